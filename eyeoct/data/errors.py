"""The one exception family of the data package, so callers can catch every bad-input case at once."""


class DataError(ValueError):
    """Input data (a CSV, a folder layout, an image) that cannot be used as given."""


class ImageReadError(DataError):
    """An image file that is missing, cannot be decoded, or has content the reader cannot use."""

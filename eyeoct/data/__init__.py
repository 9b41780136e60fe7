"""Data: image reading, APTOS-2024 and folder layouts, the phantom, datasets and the DataModule."""

"""Conditioning of EyeOCT: CF encoder, ControlNet branch, ControlLDM."""

"""Conditioning of EyeOCT: CF encoder, ControlNet branch, ControlLDM."""
from ldm.util.config import allow_target_prefix

allow_target_prefix("cldm.")

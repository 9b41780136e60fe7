"""EyeOCT: the eye-specific parts (data, metrics, I/O, configs, CLI and training plumbing)."""
from ldm.util.config import allow_target_prefix

allow_target_prefix("eyeoct.")
allow_target_prefix("cldm.")  # eyeoct's configs name cldm targets whether or not cldm was imported yet

"""EyeOCT: the eye-specific parts (data, metrics, I/O, configs, CLI and training plumbing)."""

"""Generate the six OCT B-scans of every CF photograph in the APTOS-2024 submission layout.

    eyeoct-infer --run runs/dm_phantom_demo/<stamp> --input photos/ --out preds --ddim-steps 50
    eyeoct-infer --run runs/dm_phantom_demo/<stamp>/export --input photos/ --out preds   # an export folder
    eyeoct-infer --config cfg.yaml --ckpt last.ckpt --input data/aptos/val/val.csv --out sub --zip

The arguments and the run live in `eyeoct.inference.cli`.
"""
from eyeoct.inference.cli import cli_entry as main

__all__ = ["main"]

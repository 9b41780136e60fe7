"""Generate the six OCT B-scans of every CF photograph in the APTOS-2024 submission layout (see `eyeoct-infer`).

Examples:
  python scripts/infer.py --run runs/dm_phantom_demo/<stamp> --input photos/ --out preds
  python scripts/infer.py --run runs/dm_phantom_demo/<stamp>/export --input photos/ --out preds   # an export
  python scripts/infer.py --config cfg.yaml --ckpt last.ckpt --input data/aptos/val/val.csv --out sub --zip
  python scripts/infer.py --run RUN --input eye.jpg --out eye_pred --samples-per-input 8   # + uncertainty
"""
from eyeoct.commands.infer import main

if __name__ == "__main__":
    main()

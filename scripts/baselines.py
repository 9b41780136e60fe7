"""Reference predictions for the held-out cases of a data config, in the submission layout (see `eyeoct-baselines`).

Example: python scripts/baselines.py --data-config configs/data/phantom_demo.yaml --out runs/baselines_demo
"""
from eyeoct.commands.baselines import main

if __name__ == "__main__":
    main()

"""Evaluate prediction folders against ground truth in one comparison report (see `eyeoct-evaluate --help`).

Example: python scripts/evaluate.py --pred model=preds --pred mean=baselines/mean --gt baselines/ground_truth
"""
from eyeoct.commands.evaluate import main

if __name__ == "__main__":
    main()

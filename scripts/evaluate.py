"""Evaluate a prediction folder (<pred>/<stem>/<stem>_{0..5}.<ext>) against ground truth (see `eyeoct-evaluate`).

Example: python scripts/evaluate.py --pred runs/x/preds --gt data/aptos/train/train.csv --metrics ssim,psnr,fvd
"""
from eyeoct.commands.evaluate import main

if __name__ == "__main__":
    main()

"""How much of the phantom's OCT does its CF determine? Retrieval oracles on the demo's eyes.

Renders the demo's training eyes (0..255) and held-out eyes (20000..20031) at the demo's sizes and scores
on the held-out eyes, against the mean training volume measured in the same run:
- `mean`: the mean of all training volumes;
- `same laterality + pathology`: the mean of the training volumes sharing the eye's laterality and pathology;
- `k nearest by metadata`: the mean of the k training volumes of the same laterality and pathology closest
  in axial length (myopia). It reads the phantom's hidden parameters, so it bounds what a predictor
  that recovers those CF-visible facts could reach with a mean of similar eyes.
The predictors are library code (eyeoct/baselines/ceiling.py), shared with the demo's report (method `ceiling`).

    python benchmarks/phantom_ceiling.py [--k 8]
"""
from __future__ import annotations

import argparse

import numpy as np

from eyeoct.baselines.ceiling import ceiling_volumes
from eyeoct.data.phantom import PhantomConfig, render_case
from ldm.metrics.psnr import psnr_per_volume
from ldm.metrics.ssim import ssim_per_image

DEMO_PHANTOM = PhantomConfig(cf_size=128, oct_height=64, oct_width=96)  # configs/data/phantom_demo.yaml
TRAIN, HELDOUT = range(0, 256), range(20000, 20032)


def render(indices: range) -> tuple[np.ndarray, list[dict]]:
    cases = [render_case(0, i, DEMO_PHANTOM) for i in indices]
    return np.stack([c.oct for c in cases]).astype(np.float64), [c.meta for c in cases]


def score(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Mean SSIM (per slice, as the evaluation) and PSNR (per volume) of uint8-rounded predictions."""
    pred = np.rint(pred)
    ssim = ssim_per_image(pred, truth, data_range=255.0).mean().item()
    psnr = psnr_per_volume(pred, truth, data_range=255.0).mean().item()
    return ssim, psnr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=8)
    args = parser.parse_args()
    train, train_meta = render(TRAIN)
    truth, test_meta = render(HELDOUT)
    predictions = {
        "mean": np.broadcast_to(train.mean(axis=0), truth.shape),
        "same laterality + pathology": ceiling_volumes(train, train_meta, test_meta, k=None),
        f"{args.k} nearest by metadata": ceiling_volumes(train, train_meta, test_meta, k=args.k),
    }
    baseline = score(predictions["mean"], truth)
    print(f"{len(TRAIN)} training eyes, {len(HELDOUT)} held-out eyes, B-scans "
          f"{DEMO_PHANTOM.oct_height}x{DEMO_PHANTOM.oct_width}")
    print(f"{'predictor':<32} {'SSIM':>7} {'PSNR':>7} {'dSSIM vs mean':>14}")
    for name, pred in predictions.items():
        ssim, psnr = score(pred, truth)
        print(f"{name:<32} {ssim:7.4f} {psnr:7.2f} {ssim - baseline[0]:+14.4f}")


if __name__ == "__main__":
    main()

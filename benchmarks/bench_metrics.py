"""SSIM throughput: eyeoct.metrics.ssim_per_image vs skimage.metrics.structural_similarity.

Both score the same uint8 volumes (default 64 volumes of 6x320x448, the submission size) slice by
slice with data_range 255; prints volumes/s for each, their ratio and the largest difference.

    python benchmarks/bench_metrics.py [--volumes 64] [--height 320] [--width 448] [--batch 8]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from skimage.metrics import structural_similarity

from eyeoct.metrics import ssim_per_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volumes", type=int, default=64)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--width", type=int, default=448)
    parser.add_argument("--batch", type=int, default=8, help="volumes per ssim_per_image call")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.volumes, 6, args.height, args.width)
    target = rng.integers(0, 256, shape, dtype=np.uint8)
    pred = np.clip(target.astype(np.int16) + rng.integers(-30, 31, shape), 0, 255).astype(np.uint8)

    start = time.perf_counter()
    ref = np.array([[structural_similarity(t, p, data_range=255) for p, t in zip(pv, tv)]
                    for pv, tv in zip(pred, target)])
    t_ref = time.perf_counter() - start

    results = {}
    for dtype in (torch.float64, torch.float32):
        start = time.perf_counter()
        ours = torch.cat([ssim_per_image(torch.from_numpy(pred[i:i + args.batch]),
                                         torch.from_numpy(target[i:i + args.batch]), 255, dtype=dtype)
                          for i in range(0, args.volumes, args.batch)])
        results[dtype] = (time.perf_counter() - start, np.abs(ours.double().numpy() - ref).max())

    print(f"SSIM on {args.volumes} volumes of 6x{args.height}x{args.width} uint8, torch threads {torch.get_num_threads()}")
    print(f"skimage           : {args.volumes / t_ref:8.2f} volumes/s")
    for dtype, (elapsed, diff) in results.items():
        print(f"ours {str(dtype).split('.')[-1]:<13}: {args.volumes / elapsed:8.2f} volumes/s   "
              f"speed-up x{t_ref / elapsed:5.2f}   max |ours - skimage| = {diff:.2e}")


if __name__ == "__main__":
    main()

"""How close eyeoct.metrics.thickness comes to the phantom's true ILM and RPE, and how long it takes.

Renders phantom eyes (seed 0, indices 0..N-1) noise-free and speckled at the demo's 64x96, at 320x448 (the
APTOS submission size) and at 496x768 (Spectralis), finds the boundaries of each volume, and prints per size
and noise the mean absolute error over all A-scans of the ILM and of the RPE's outer edge against the
renderer's truth (`true_boundary_rows`), the worst single B-scan, and seconds per volume (6 B-scans).

    python benchmarks/thickness_phantom.py [--eyes 40 --eyes-full 8]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from eyeoct.data.phantom import PhantomConfig, render_case, true_boundary_rows
from eyeoct.metrics.thickness import find_boundaries


def measure(config: PhantomConfig, eyes: int, noise_free: bool) -> tuple[float, float, float, float]:
    """(mean ILM error, mean RPE error, worst B-scan error of either, seconds per volume)."""
    ilm_errors, rpe_errors, seconds = [], [], 0.0
    for index in range(eyes):
        case = render_case(0, index, config, noise_free=noise_free)
        truth = true_boundary_rows(case)
        start = time.perf_counter()
        ilm, rpe = find_boundaries(case.oct)
        seconds += time.perf_counter() - start
        ilm_errors.append(np.abs(ilm - truth["ilm"]).mean(axis=1))
        rpe_errors.append(np.abs(rpe - truth["rpe_bottom"]).mean(axis=1))
    ilm_errors, rpe_errors = np.concatenate(ilm_errors), np.concatenate(rpe_errors)
    return ilm_errors.mean(), rpe_errors.mean(), max(ilm_errors.max(), rpe_errors.max()), seconds / eyes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eyes", type=int, default=40, help="eyes at 64x96 and 320x448")
    parser.add_argument("--eyes-full", type=int, default=8, help="eyes at 496x768")
    args = parser.parse_args()
    print(f"{'B-scans':<9} {'noise':<11} {'eyes':>4} {'ILM px':>7} {'RPE px':>7} {'worst':>6} {'s/volume':>9}")
    for (height, width), eyes in (((64, 96), args.eyes), ((320, 448), args.eyes), ((496, 768), args.eyes_full)):
        config = PhantomConfig(cf_size=32, oct_height=height, oct_width=width)
        for noise_free in (True, False):
            ilm, rpe, worst, seconds = measure(config, eyes, noise_free)
            noise = "noise-free" if noise_free else "speckled"
            print(f"{height}x{width:<6} {noise:<11} {eyes:>4} {ilm:7.2f} {rpe:7.2f} {worst:6.2f} {seconds:9.3f}")


if __name__ == "__main__":
    main()

"""From the K sampled volumes of one CF photo to what is written: the submitted volume and the spread.

Uncertainty map: the per-pixel standard deviation across the K samples (population std, divided by K),
taken on intensities in [0, 1] (black 0, white 1). The largest possible value is 0.5 (half the samples
black, half white), so maps are stored as uint8 `round(std * STD_TO_UINT8)` with STD_TO_UINT8 = 510:
0 means all samples agree, 255 means maximal disagreement, and one grey level is a std of 1/510.
"""
from __future__ import annotations

import numpy as np
import torch

SUBMIT_MODES = ("first", "mean")
STD_TO_UINT8 = 510.0


def submitted_volume(samples: torch.Tensor, mode: str) -> torch.Tensor:
    """The volume to submit from samples [K,6,H,W]: sample 0 (`first`) or the per-pixel mean (`mean`)."""
    if mode == "first":
        return samples[0]
    if mode == "mean":
        return samples.clamp(-1, 1).mean(dim=0)
    raise ValueError(f"submit mode must be one of {SUBMIT_MODES}, got {mode!r}")


def std_map(samples: torch.Tensor) -> np.ndarray:
    """uint8 [6,H,W] uncertainty map of samples [K,6,H,W] in [-1, 1] (scale in the module docstring)."""
    if samples.shape[0] < 2:
        raise ValueError(f"an uncertainty map needs at least 2 samples, got {samples.shape[0]}")
    intensity = (samples.detach().float().clamp(-1, 1) + 1) / 2
    std = intensity.std(dim=0, correction=0)
    return (std * STD_TO_UINT8).round().clamp(0, 255).to(torch.uint8).cpu().numpy()

"""Radial consistency of six B-scans through the fovea.

Radial scans through one centre all contain the same central A-scan (the centre column of each
B-scan). We take a band of the middle `band` columns of each slice, average it over columns to one
depth profile per slice, and measure how far the six profiles are from their mean:
mean over depth and slices of |profile_k - mean_k profile_k|, in units of [0,1] intensity.
0 means the shared A-scan agrees perfectly; compute it on real volumes for the reference level.
"""
from __future__ import annotations

import numpy as np
import torch


def central_profiles(volumes, band: int = 3) -> torch.Tensor:
    """Depth profiles [..., S, H] of the middle `band` columns of volumes [..., S, H, W] (averaged)."""
    volumes = torch.as_tensor(np.asarray(volumes)) if not isinstance(volumes, torch.Tensor) else volumes
    if volumes.dim() < 3:
        raise ValueError(f"radial consistency expects volumes [..., slices, H, W], got {tuple(volumes.shape)}")
    width = volumes.shape[-1]
    if not 1 <= band <= width:
        raise ValueError(f"band must be in 1..{width} columns, got {band}")
    start = (width - band) // 2
    return volumes[..., start:start + band].double().mean(dim=-1)


def radial_inconsistency(volumes, data_range: float = 255.0, band: int = 3) -> torch.Tensor:
    """Mean absolute deviation of the slices' central profiles from their mean, per volume.

    volumes [..., S, H, W] with values in [0, data_range] -> [...] in units of [0,1] intensity.
    """
    profiles = central_profiles(volumes, band) / float(data_range)
    if profiles.shape[-2] < 2:
        raise ValueError("radial consistency needs at least two slices per volume")
    deviation = profiles - profiles.mean(dim=-2, keepdim=True)
    return deviation.abs().mean(dim=(-2, -1))

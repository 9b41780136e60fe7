"""PSNR = 10*log10(R^2 / MSE), per volume (MSE over the last three dims) or per 2-D image."""
from __future__ import annotations

import torch

from ldm.metrics._tensors import as_float_pair, check_data_range


def _psnr(pred, target, data_range, reduce_dims: int, name: str, dtype) -> torch.Tensor:
    data_range = check_data_range(data_range, name)
    x, y = as_float_pair(pred, target, dtype, name)
    if x.dim() < reduce_dims:
        raise ValueError(f"{name}: need at least {reduce_dims} dims, got shape {tuple(x.shape)}")
    mse = (x - y).square().mean(dim=tuple(range(-reduce_dims, 0)))
    # Identical inputs give MSE 0 and PSNR +inf (skimage's convention, as R^2/0).
    return torch.where(mse == 0, torch.full_like(mse, float("inf")),
                       10.0 * torch.log10(data_range**2 / mse))


def psnr_per_volume(pred, target, data_range: float, dtype: torch.dtype | None = None) -> torch.Tensor:
    """PSNR of each volume with the MSE over its last three dims (C,H,W): [B,6,H,W] -> [B].

    Identical volumes give +inf. Compute dtype defaults to float64.
    """
    return _psnr(pred, target, data_range, 3, "psnr_per_volume", dtype)


def psnr_per_image(pred, target, data_range: float, dtype: torch.dtype | None = None) -> torch.Tensor:
    """PSNR of each 2-D image (MSE over the last two dims): [B,6,H,W] -> [B,6]."""
    return _psnr(pred, target, data_range, 2, "psnr_per_image", dtype)

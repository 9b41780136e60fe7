"""MS-SSIM (Wang, Simoncelli & Bovik 2003) per 2-D image, built on the project's SSIM.

Five scales with the paper's weights. At every scale the same 7x7 uniform window with sample
covariance as `ssim_per_image` is used (not the paper's 11x11 Gaussian), so MS-SSIM at one scale
equals our SSIM. Between scales: 2x2 average pooling (odd sizes drop the last row/column).
Negative contrast-structure means are clamped to 0 before the power (fractional powers of
negative numbers are undefined). Small images: the coarsest scale must still hold a 7x7 window,
so both sides must be >= 7 * 2^4 = 112 pixels; smaller inputs raise a ValueError.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ldm.metrics._tensors import as_float_pair, check_data_range
from ldm.metrics.ssim import WIN_SIZE, ssim_components

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MIN_SIZE = WIN_SIZE * 2 ** (len(MS_SSIM_WEIGHTS) - 1)


def ms_ssim_per_image(pred, target, data_range: float, dtype: torch.dtype | None = None) -> torch.Tensor:
    """MS-SSIM of each 2-D image over the last two dims; leading dims kept; float64 by default."""
    data_range = check_data_range(data_range, "ms_ssim_per_image")
    x, y = as_float_pair(pred, target, dtype, "ms_ssim_per_image")
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    if min(h, w) < MIN_SIZE:
        raise ValueError(f"MS-SSIM with {len(MS_SSIM_WEIGHTS)} scales needs images of at least "
                         f"{MIN_SIZE}x{MIN_SIZE} pixels (7x7 window at 1/16 size), got {h}x{w}")
    x, y = x.reshape(-1, 1, h, w), y.reshape(-1, 1, h, w)
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=x.dtype, device=x.device)
    score = torch.ones(x.shape[0], dtype=x.dtype, device=x.device)
    for scale, weight in enumerate(weights):
        luminance, cs = ssim_components(x[:, 0], y[:, 0], data_range)
        last = scale == len(MS_SSIM_WEIGHTS) - 1
        term = (luminance * cs).mean(dim=(1, 2)) if last else cs.mean(dim=(1, 2))
        score = score * term.clamp(min=0) ** weight
        if not last:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return score.reshape(lead)

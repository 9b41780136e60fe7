"""SSIM per 2-D image, identical to `skimage.metrics.structural_similarity` with its defaults.

Defaults reproduced: 7x7 uniform window, sample covariance (N/(N-1), N=49), K1=0.01, K2=0.03,
mean of the SSIM map over the valid region (a border of 3 pixels cropped). Because the border is
cropped, skimage's reflect-padded filter equals a 'valid' box filter, which is what we compute.
Every 2-D image is scored on its own: a [C,H,W] stack gives C values, never one 3-D SSIM.
"""
from __future__ import annotations

import torch

from ldm.metrics._tensors import as_float_pair, check_data_range

WIN_SIZE = 7
K1 = 0.01
K2 = 0.03


def _box_mean(x: torch.Tensor, win_size: int) -> torch.Tensor:
    """Separable 'valid' mean over win_size x win_size windows of the last two dims.

    Sums of shifted views (no cumulative sums, so float32 keeps its precision); on CPU this is
    faster than avg_pool2d.
    """
    h, w = x.shape[-2:]
    rows = x[..., 0:h - win_size + 1, :].clone()
    for k in range(1, win_size):
        rows += x[..., k:h - win_size + 1 + k, :]
    out = rows[..., 0:w - win_size + 1].clone()
    for k in range(1, win_size):
        out += rows[..., k:w - win_size + 1 + k]
    return out.div_(win_size * win_size)


def ssim_components(x: torch.Tensor, y: torch.Tensor, data_range: float,
                    win_size: int = WIN_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid-region maps (luminance term, contrast-structure term) of x, y [N,H,W].

    SSIM map = luminance * cs. Exposed for MS-SSIM, which needs cs at coarse scales.
    """
    n, h, w = x.shape
    if h < win_size or w < win_size:
        raise ValueError(f"SSIM needs images of at least {win_size}x{win_size} pixels, got {h}x{w}")
    # Variances are computed from data shifted by a constant (the mean of the pair): it does not
    # change (co)variances but avoids cancellation in E[x^2]-E[x]^2 on float32.
    shift = 0.5 * (x.mean(dim=(1, 2), keepdim=True) + y.mean(dim=(1, 2), keepdim=True))
    xc, yc = x - shift, y - shift
    # vx + vy is all the formula needs, so x^2 + y^2 is filtered as one map (4 maps, not 5).
    stats = _box_mean(torch.stack([xc, yc, xc * xc + yc * yc, xc * yc], dim=1), win_size)
    mx, my, m_sq, mxy = stats.unbind(dim=1)
    cov_norm = win_size**2 / (win_size**2 - 1)
    var_sum = cov_norm * (m_sq - mx * mx - my * my)
    vxy = cov_norm * (mxy - mx * my)
    ux, uy = mx + shift, my + shift
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    luminance = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1)
    cs = (2 * vxy + c2) / (var_sum + c2)
    return luminance, cs


def ssim_per_image(pred, target, data_range: float, dtype: torch.dtype | None = None) -> torch.Tensor:
    """SSIM of each 2-D image over the last two dims; leading dims kept (e.g. [B,6,H,W] -> [B,6]).

    Args:
        pred, target: tensors (or numpy arrays) of equal shape [..., H, W], H and W >= 7.
        data_range: dynamic range R of the data (255 for uint8, 2 for [-1,1]); required.
        dtype: compute dtype; default float64 (matches skimage within 1e-6). float32 is faster.
    Returns:
        tensor of shape pred.shape[:-2] in the compute dtype, on pred's device.
    """
    data_range = check_data_range(data_range, "ssim_per_image")
    x, y = as_float_pair(pred, target, dtype, "ssim_per_image")
    if x.dim() < 2:
        raise ValueError(f"ssim_per_image: need [..., H, W], got shape {tuple(x.shape)}")
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    luminance, cs = ssim_components(x.reshape(-1, h, w), y.reshape(-1, h, w), data_range)
    return (luminance * cs).mean(dim=(1, 2)).reshape(lead)

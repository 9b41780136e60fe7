"""Retinal thickness from B-scans: the ILM and the RPE found per A-scan by a gradient method.

The same code runs on predictions and ground truth. Per B-scan [H, W] (sizes below are fractions of H and W,
so one setting serves 64x96 phantom scans and 496x768 Spectralis scans alike):

1. Smooth with a Gaussian (sigma H/200 rows, W/150 columns, at least 1 px) so speckle averages out, and
   rescale intensities to `level`: 0 at the image's median (vitreous and background), 1 at its 99th
   percentile (the brightest tissue). `rise`/`drop` are the positive/negative vertical gradient of `level`.
2. ILM: the first strong dark-to-bright transition from the top. A row's score is its rise (capped at the
   image's 99.5th percentile, so a saturated export border cannot outweigh the retina) times the squared
   fraction of tissue (level > 0.1) in the H/15 rows below it, times the fraction of the image above it that
   is free of tissue (1 - tissue rows above / (H/15)). Vitreous noise has no rise, layer edges inside the
   retina have tissue above them, a thin bright line (an export's padding) has little tissue below it.
3. RPE: the brightest band of the outer retina, then its outer edge. The band is the brightest continuous
   path (intensity smoothed over W/40 columns) between H/25 and H/2.5 rows below the ILM; the edge is the
   strongest bright-to-dark transition (drop times the brightness of the H/60 rows above it) from H/80 rows
   above to H/25 rows below that band. So the boundary is the RPE's outer (choroidal) side.
4. Continuity: every path above is a minimum-cost path over the A-scans (dynamic programming): the summed
   cost plus a penalty per row of change between neighbouring A-scans, at most H/100 rows per A-scan (at
   least 2), so a column of speckle, a vessel shadow or a bright exudate cannot pull a boundary away.
   Rows are refined to sub-pixel precision by a parabola through the edge strength around the peak.

Thickness per A-scan = RPE row - ILM row in pixels (times the axial pixel size for micrometres).
Validated on the phantom, whose renderer knows the true boundaries (`tests/test_thickness.py`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter


@dataclass(frozen=True)
class BoundaryParams:
    """Sizes as fractions of the B-scan height (rows) or width (columns); see the module docstring."""

    sigma_rows: float = 1 / 200
    sigma_cols: float = 1 / 150
    tissue_level: float = 0.1        # `level` above which a pixel counts as tissue
    tissue_rows: float = 1 / 15      # rows below the ILM that should be tissue
    min_gap: float = 1 / 25          # least ILM-to-RPE distance
    max_thickness: float = 1 / 2.5   # largest ILM-to-RPE distance searched
    band_sigma_cols: float = 1 / 40  # lateral smoothing of the brightness that finds the RPE band
    band_smoothness: float = 0.2     # continuity penalty of the RPE band path (level units per row)
    brightness_rows: float = 1 / 60  # rows above an RPE edge candidate whose brightness weights it
    rpe_above: float = 1 / 80        # RPE edge searched this far above the band ...
    rpe_below: float = 1 / 25        # ... to this far below it
    max_step: float = 1 / 100        # largest row change between neighbouring A-scans
    smoothness: float = 0.02         # continuity penalty of the boundary paths (gradient units per row)


OUTSIDE_COST = 1e3  # cost of a row outside a searched band: finite, so a path always exists


def _rows(fraction: float, size: int, floor: int = 1) -> int:
    return max(floor, int(round(fraction * size)))


def best_path(cost: np.ndarray, max_step: int, smoothness: float) -> np.ndarray:
    """Rows [B, W] minimising, per image of cost [B, H, W], the summed cost along the path plus
    smoothness * |row change| between neighbouring columns, with |row change| <= max_step (Viterbi)."""
    batch, height, width = cost.shape
    steps = np.arange(-max_step, max_step + 1)
    penalty = (smoothness * np.abs(steps))[None, :, None]
    source = np.arange(height)[None, :] - steps[:, None]  # [2J+1, H]: the row each step comes from
    invalid = ((source < 0) | (source >= height))[None]
    source = np.clip(source, 0, height - 1)
    total = cost[:, :, 0].astype(np.float64)
    back = np.empty((width, batch, height), np.int64)
    for col in range(1, width):
        candidates = np.where(invalid, np.inf, total[:, source] + penalty)  # [B, 2J+1, H]
        choice = candidates.argmin(axis=1)
        back[col] = source[choice, np.arange(height)[None, :]]
        total = np.take_along_axis(candidates, choice[:, None, :], axis=1)[:, 0] + cost[:, :, col]
    path = np.empty((batch, width), np.int64)
    path[:, -1] = total.argmin(axis=1)
    images = np.arange(batch)
    for col in range(width - 1, 0, -1):
        path[:, col - 1] = back[col, images, path[:, col]]
    return path


def _subpixel(signal: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Integer peak rows `path` [B, W] of signal [B, H, W] refined by a parabola through the 3 rows around."""
    height = signal.shape[1]
    inner = np.clip(path, 1, height - 2)[:, None, :]
    lo, mid, hi = (np.take_along_axis(signal, inner + d, axis=1)[:, 0] for d in (-1, 0, 1))
    curvature = lo - 2 * mid + hi
    peaked = curvature < 0
    offset = np.where(peaked, 0.5 * (lo - hi) / np.where(peaked, curvature, -1.0), 0.0)
    return inner[:, 0] + np.clip(offset, -0.5, 0.5)


def _count_below(mask: np.ndarray, rows: int) -> np.ndarray:
    """How many of the `rows` rows starting at each pixel (itself and below) are True in mask [B, H, W]."""
    cumulative = np.concatenate([np.zeros_like(mask[:, :1], np.int64), np.cumsum(mask, axis=1)], axis=1)
    end = np.minimum(np.arange(mask.shape[1]) + rows, mask.shape[1])
    return cumulative[:, end] - cumulative[:, :-1]


def _guided_path(edge: np.ndarray, guess: np.ndarray, above: int, below: int, params: BoundaryParams,
                 max_step: int) -> np.ndarray:
    """Boundary rows [B, W]: the strongest continuous path of edge [B, H, W] from `above` rows above to
    `below` rows below the guess [B, W]."""
    offset = np.arange(edge.shape[1])[None, :, None] - guess[:, None, :]
    inside = (offset >= -above) & (offset <= below)
    path = best_path(np.where(inside, -edge, OUTSIDE_COST), max_step, params.smoothness)
    return _subpixel(edge, path)


def _mean_above(image: np.ndarray, rows: int) -> np.ndarray:
    """Mean of the `rows` rows above each pixel of image [B, H, W] (the pixel's own value in the top rows)."""
    cumulative = np.cumsum(image, axis=1)
    out = image.copy()
    out[:, rows + 1:] = (cumulative[:, rows:-1] - cumulative[:, :-rows - 1]) / rows
    return out


def find_boundaries(bscans: np.ndarray, params: BoundaryParams = BoundaryParams()) -> tuple[np.ndarray, np.ndarray]:
    """(ILM rows, RPE outer-edge rows), float [..., W] each, of B-scans [..., H, W] (e.g. a volume [6, H, W];
    uint8 or float; rows are fractional, row i being the centre of pixel row i)."""
    image = np.asarray(bscans, np.float64)
    if image.ndim < 2 or min(image.shape[-2:]) < 8:
        raise ValueError(f"find_boundaries expects B-scans [..., H, W] of at least 8x8 pixels, got {image.shape}")
    lead = image.shape[:-2]
    image = image.reshape(-1, *image.shape[-2:])
    _, height, width = image.shape
    sigma = (0.0, max(1.0, params.sigma_rows * height), max(1.0, params.sigma_cols * width))
    smooth = gaussian_filter(image, sigma)
    low, high = (v[:, None, None] for v in np.percentile(smooth.reshape(len(smooth), -1), [50, 99], axis=1))
    spread = np.where(high > low, high - low, 1.0)
    level = (smooth - low) / spread  # 0: the background (median), 1: the brightest tissue
    gradient = np.gradient(level, axis=1)
    max_step = _rows(params.max_step, height, 2)
    row = np.arange(height)[None, :, None]

    # ILM: the strongest dark-to-bright edge with tissue below it and none above it.
    span = _rows(params.tissue_rows, height, 2)
    tissue = level > params.tissue_level
    tissue_below = _count_below(tissue, span) / span
    tissue_above = np.cumsum(tissue, axis=1) - tissue  # tissue rows anywhere above, this row excluded
    dark_above = np.clip(1.0 - tissue_above / span, 0.0, None)
    rise = np.clip(gradient, 0, None)
    cap = np.percentile(rise.reshape(len(rise), -1), 99.5, axis=1)[:, None, None]
    score = np.minimum(rise, cap) * tissue_below ** 2 * dark_above
    ilm = _subpixel(rise, best_path(-score, max_step, params.smoothness))

    # RPE: the brightest continuous band below the ILM, then the strongest bright-to-dark edge just below it.
    below_ilm = row - ilm[:, None, :]
    allowed = (below_ilm >= _rows(params.min_gap, height, 2)) & (below_ilm <= _rows(params.max_thickness, height))
    lateral = gaussian_filter(level, (0.0, 0.0, max(1.0, params.band_sigma_cols * width)))
    band_rows = best_path(np.where(allowed, -lateral, OUTSIDE_COST), max_step, params.band_smoothness)
    brightness = np.clip(_mean_above(level, _rows(params.brightness_rows, height)), 0, None)
    drop = np.where(allowed, np.clip(-gradient, 0, None) * brightness, 0.0)
    rpe = _guided_path(drop, band_rows.astype(np.float64), _rows(params.rpe_above, height, 2),
                       _rows(params.rpe_below, height, 2), params, max_step)
    return ilm.reshape(*lead, width), rpe.reshape(*lead, width)


def retinal_thickness(bscans: np.ndarray, params: BoundaryParams = BoundaryParams()) -> np.ndarray:
    """RPE row - ILM row per A-scan in pixels: B-scans [..., H, W] -> [..., W]."""
    ilm, rpe = find_boundaries(bscans, params)
    return rpe - ilm


def thickness_difference(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Mean absolute difference over the A-scans of each slice: thickness [..., W] twice -> [...] pixels."""
    if pred.shape != truth.shape:
        raise ValueError(f"thickness profiles differ in shape: {pred.shape} vs {truth.shape}")
    return np.abs(np.asarray(pred, np.float64) - np.asarray(truth, np.float64)).mean(axis=-1)

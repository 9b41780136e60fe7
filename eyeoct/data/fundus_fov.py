"""The field of view of a colour fundus photograph: the bright disc on the dark surround.

`find_fov` finds the disc from the image alone (any camera, any size), `crop_to_fov` cuts the square
that frames it as the phantom renders its CF (disc diameter = side / `FRAME_PER_DIAMETER`), padding with
black where the disc runs past the image border. How the disc is found:

1. The photo is box-reduced to about `ANALYSIS_SIDE` pixels on its long side; brightness is the largest
   channel (the red channel of a fundus, whose dark rim still lies far above the surround).
2. The surround level is the 2nd percentile of brightness, the fundus level the 90th; pixels brighter than
   the surround by `THRESHOLD_FRACTION` of that contrast form the mask. Its largest connected part, holes
   filled, is the candidate disc.
3. Its rim pixels, leaving out those within `BORDER_MARGIN` pixels of the image border (where a disc that
   runs past the border is cut by the frame, not by the camera's field stop), are fitted with a circle by
   least squares, refitted twice without the points that lie far from it (notches, labels).
4. The disc is accepted when the circle fits its rim (`MAX_FIT_ERROR`), the rim is seen around at least
   `MIN_VISIBLE_ARC` of the circumference, the circle is large (`MIN_RADIUS_FRACTION`), bright inside
   (`MIN_COVERAGE`) and dark outside (`MAX_OUTSIDE_BRIGHT`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

ANALYSIS_SIDE = 512  # the disc is found on a copy reduced to about this many pixels on its long side
FRAME_PER_DIAMETER = 1.03  # crop side / disc diameter: the phantom's framing (eyeoct.data.phantom.cf)
MIN_CONTRAST = 24.0  # grey levels between the surround and the fundus
THRESHOLD_FRACTION = 0.2  # the mask: brighter than surround + this fraction of the contrast
BORDER_MARGIN = 3  # analysis pixels: rim points this close to the image border are the frame's, not the disc's
MIN_RIM_POINTS = 24
MAX_FIT_ERROR = 0.015  # median |distance to the centre - radius| of the rim points, relative to the radius
MIN_VISIBLE_ARC = 0.3  # share of the circumference (in 5-degree sectors) where the rim is seen
MIN_RADIUS_FRACTION = 0.3  # radius at least this share of half the image's short side
MIN_COVERAGE = 0.9  # share of the circle (inside the image) that is bright
MAX_OUTSIDE_BRIGHT = 0.1  # share of the image outside the circle that is bright
FRAMED_TOLERANCE = 1  # pixels: a square image whose crop box is this close to itself is kept as it is
RIM_PROFILE = 4  # analysis pixels either side of the fitted rim searched for the half-way crossing
_ARC_SECTORS = 72


@dataclass(frozen=True)
class FieldOfView:
    """The fundus disc in pixel coordinates of the photo (x = column, y = row), with the measures it passed."""

    cx: float
    cy: float
    radius: float
    surround_level: float  # brightness (largest channel, 0..255) of the surround
    fundus_level: float  # ... and of the fundus (90th percentile)
    fit_error: float  # median rim residual / radius
    visible_arc: float  # share of the circumference where the rim is seen
    coverage: float  # share of the circle inside the image that is bright

    def crop_box(self) -> tuple[int, int, int]:
        """`(left, top, side)` of the square framing the disc; it may reach past the image."""
        side = max(1, int(round(2 * self.radius * FRAME_PER_DIAMETER)))
        return int(round(self.cx - side / 2 + 0.5)), int(round(self.cy - side / 2 + 0.5)), side

    def disc_mask(self, height: int, width: int) -> np.ndarray:
        """bool [height, width]: pixels whose centre lies inside the disc."""
        rows, cols = np.ogrid[:height, :width]
        return (cols - self.cx) ** 2 + (rows - self.cy) ** 2 <= self.radius**2


def brightness(rgb: np.ndarray) -> np.ndarray:
    """float32 [h,w]: the largest channel of a uint8 [h,w,3] image."""
    return rgb.max(axis=2).astype(np.float32)


def _reduced(rgb: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The photo box-reduced to about `ANALYSIS_SIDE` on its long side, with its x and y scale factors."""
    height, width = rgb.shape[:2]
    factor = max(1.0, max(height, width) / ANALYSIS_SIDE)
    if factor == 1.0:
        return rgb, 1.0, 1.0
    small_w, small_h = max(1, round(width / factor)), max(1, round(height / factor))
    small = np.asarray(Image.fromarray(rgb).resize((small_w, small_h), Image.BOX))
    return small, width / small_w, height / small_h


def _candidate_disc(value: np.ndarray, threshold: float) -> np.ndarray | None:
    """The largest bright connected region, holes filled (bool [h,w]); None if there is none."""
    mask = ndimage.binary_opening(value > threshold, structure=np.ones((3, 3), bool))
    labels, count = ndimage.label(mask)
    if count == 0:
        return None
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
    return ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))


def _rim_points(disc: np.ndarray) -> np.ndarray:
    """[N, 2] (x, y) of the disc's edge pixels that are not at the image border."""
    rim = disc & ~ndimage.binary_erosion(disc, border_value=1)
    height, width = disc.shape
    m = BORDER_MARGIN
    rim[:m], rim[height - m:], rim[:, :m], rim[:, width - m:] = False, False, False, False
    rows, cols = np.nonzero(rim)
    return np.stack([cols, rows], axis=1).astype(np.float64)


def fit_circle(points: np.ndarray) -> tuple[float, float, float]:
    """Least-squares circle `(cx, cy, r)` through [N, 2] points (the algebraic fit x^2 + y^2 = a x + b y + c)."""
    x, y = points[:, 0], points[:, 1]
    design = np.stack([x, y, np.ones_like(x)], axis=1)
    (a, b, c), *_ = np.linalg.lstsq(design, x**2 + y**2, rcond=None)
    cx, cy = a / 2, b / 2
    return float(cx), float(cy), float(np.sqrt(max(c + cx**2 + cy**2, 0.0)))


def _robust_circle(points: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """Circle fitted, then refitted twice to the points near it; returns it with the inlier mask."""
    inliers = np.ones(len(points), bool)
    cx, cy, r = fit_circle(points)
    for _ in range(2):
        residual = np.abs(np.hypot(points[:, 0] - cx, points[:, 1] - cy) - r)
        inliers = residual <= max(1.5, 3.0 * float(np.median(residual)))
        if inliers.sum() < MIN_RIM_POINTS:
            break
        cx, cy, r = fit_circle(points[inliers])
    return cx, cy, r, inliers


def _refined_rim(value: np.ndarray, cx: float, cy: float, r: float, angles: np.ndarray) -> np.ndarray:
    """[N, 2] rim points at sub-pixel precision: where each radial brightness profile through an angle of
    `angles` falls half-way from the fundus side (`RIM_PROFILE` inside) to the surround side (outside)."""
    offsets = np.linspace(-RIM_PROFILE, RIM_PROFILE, 8 * RIM_PROFILE + 1)
    radii = r + offsets[None, :]
    xs, ys = cx + radii * np.cos(angles)[:, None], cy + radii * np.sin(angles)[:, None]
    profiles = ndimage.map_coordinates(value, [ys.ravel(), xs.ravel()], order=1, mode="nearest").reshape(xs.shape)
    inner, outer = profiles[:, 0], profiles[:, -1]
    half = (inner + outer) / 2
    below = profiles < half[:, None]
    keep = (inner - outer > MIN_CONTRAST / 2) & below.any(axis=1)
    first = np.argmax(below, axis=1)  # first offset below half-way
    keep &= first > 0
    rows = np.nonzero(keep)[0]
    i = first[rows]
    v0, v1 = profiles[rows, i - 1], profiles[rows, i]
    crossing = r + offsets[i - 1] + (v0 - half[rows]) / (v0 - v1) * (offsets[1] - offsets[0])
    return np.stack([cx + crossing * np.cos(angles[rows]), cy + crossing * np.sin(angles[rows])], axis=1)


def find_fov(rgb: np.ndarray) -> FieldOfView | None:
    """The fundus disc of a uint8 [h,w,3] photo, or None where there is no credible one (see module doc)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 [h,w,3] image, got shape {rgb.shape}")
    small, scale_x, scale_y = _reduced(rgb)
    value = brightness(small)
    surround, fundus = (float(v) for v in np.percentile(value, [2, 90]))
    if fundus - surround < MIN_CONTRAST:
        return None
    threshold = surround + THRESHOLD_FRACTION * (fundus - surround)
    disc = _candidate_disc(value, threshold)
    if disc is None:
        return None
    points = _rim_points(disc)
    if len(points) < MIN_RIM_POINTS:
        return None
    cx, cy, r, inliers = _robust_circle(points)
    height, width = value.shape
    if not np.isfinite(r) or r < MIN_RADIUS_FRACTION * min(height, width) / 2:
        return None
    residual = np.abs(np.hypot(points[:, 0] - cx, points[:, 1] - cy) - r)
    fit_error = float(np.median(residual)) / r
    angles = np.arctan2(points[inliers, 1] - cy, points[inliers, 0] - cx)
    sectors = np.unique(((angles + np.pi) / (2 * np.pi) * _ARC_SECTORS).astype(int) % _ARC_SECTORS)
    visible_arc = len(sectors) / _ARC_SECTORS
    rows, cols = np.ogrid[:height, :width]
    distance = np.hypot(cols - cx, rows - cy)
    bright = value > threshold
    inside, outside = distance <= 0.97 * r, distance >= 1.03 * r
    coverage = float(bright[inside].mean()) if inside.any() else 0.0
    outside_bright = float(bright[outside].mean()) if outside.any() else 0.0
    if (fit_error > MAX_FIT_ERROR or visible_arc < MIN_VISIBLE_ARC or coverage < MIN_COVERAGE
            or outside_bright > MAX_OUTSIDE_BRIGHT):
        return None
    refined = _refined_rim(value, cx, cy, r, np.arctan2(points[inliers, 1] - cy, points[inliers, 0] - cx))
    if len(refined) >= MIN_RIM_POINTS:
        cx, cy, r = fit_circle(refined)
    return FieldOfView(cx=(cx + 0.5) * scale_x - 0.5, cy=(cy + 0.5) * scale_y - 0.5,
                       radius=r * (scale_x + scale_y) / 2, surround_level=surround, fundus_level=fundus,
                       fit_error=fit_error, visible_arc=visible_arc, coverage=coverage)


def crop_to_fov(rgb: np.ndarray, fov: FieldOfView) -> np.ndarray:
    """The square of `fov.crop_box()` cut from uint8 [h,w,3] `rgb`, black where it reaches past the image.

    A square image that is already framed so (its box within `FRAMED_TOLERANCE` pixels of the image) is
    returned as it is: a sub-pixel difference in the fit should not cost a resampling.
    """
    left, top, side = fov.crop_box()
    height, width = rgb.shape[:2]
    if height == width and max(abs(left), abs(top), abs(side - width)) <= FRAMED_TOLERANCE:
        return rgb
    out = np.zeros((side, side, rgb.shape[2]), dtype=rgb.dtype)
    src_top, src_left = max(top, 0), max(left, 0)
    src_bottom, src_right = min(top + side, height), min(left + side, width)
    if src_bottom > src_top and src_right > src_left:
        out[src_top - top:src_bottom - top, src_left - left:src_right - left] = rgb[src_top:src_bottom,
                                                                                    src_left:src_right]
    return out

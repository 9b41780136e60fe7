"""Render the phantom's colour fundus photo (and an infrared SLO-like view) from its geometry.

Colours are built in linear [0,1] RGB as a base layer (orange-red fundus with choroidal texture,
darker macula, foveal reflex, optic disc with cup) over which vessels and lesions are blended by
soft masks, then vignetting and a circular field stop are applied.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt

from eyeoct.data.phantom_geometry import EyeGeometry
from eyeoct.data.phantom_vessels import ARTERY, VEIN

BACKGROUND_RGB = np.array([0.86, 0.40, 0.17], np.float32)
ARTERY_RGB = np.array([0.74, 0.24, 0.12], np.float32)
VEIN_RGB = np.array([0.50, 0.11, 0.07], np.float32)
DISC_RIM_RGB = np.array([0.98, 0.70, 0.45], np.float32)
DISC_CUP_RGB = np.array([1.0, 0.93, 0.78], np.float32)
DRUSEN_RGB = np.array([0.96, 0.80, 0.45], np.float32)
EXUDATE_RGB = np.array([1.0, 0.93, 0.55], np.float32)
HAEMORRHAGE_RGB = np.array([0.42, 0.05, 0.03], np.float32)


@dataclass(frozen=True)
class FundusView:
    """A pixel grid on the fundus: `height` x `width` pixels of `mm_per_px` centred at `centre` (mm)."""

    centre: tuple[float, float]
    mm_per_px: float
    height: int
    width: int

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """x, y in mm of every pixel centre, each [height, width]."""
        xs = self.centre[0] + (np.arange(self.width, dtype=np.float32) - (self.width - 1) / 2) * self.mm_per_px
        ys = self.centre[1] + (np.arange(self.height, dtype=np.float32) - (self.height - 1) / 2) * self.mm_per_px
        return np.meshgrid(xs, ys)

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """(col, row) pixel coordinates of points xy [..., 2] in mm."""
        offset = np.array([(self.width - 1) / 2, (self.height - 1) / 2], np.float32)
        return (np.asarray(xy, np.float32) - np.asarray(self.centre, np.float32)) / self.mm_per_px + offset


def vessel_opacity(geom: EyeGeometry, view: FundusView, kind: int) -> np.ndarray:
    """Opacity [h,w] in [0,1] of the vessels of one kind: a Gaussian cross-section around the
    nearest centreline pixel, with amplitude reduced for vessels thinner than a pixel."""
    tree = geom.vessels
    sel = tree.kind == kind
    p0, p1, width = tree.p0[sel], tree.p1[sel], tree.width[sel]
    seg_px = np.linalg.norm(p1 - p0, axis=1) / view.mm_per_px
    n = np.maximum(1, np.ceil(seg_px / 0.5).astype(int))
    seg = np.repeat(np.arange(len(p0)), n)
    t = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + 0.5) / np.repeat(n, n)
    pts = view.to_pixels(p0[seg] + (p1[seg] - p0[seg]) * t[:, None])
    cols, rows = np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)
    ok = (cols >= 0) & (cols < view.width) & (rows >= 0) & (rows < view.height)
    order = np.argsort(width[seg][ok], kind="stable")  # wider vessels win shared pixels
    centre_width = np.zeros((view.height, view.width), np.float32)
    centre_width[rows[ok][order], cols[ok][order]] = width[seg][ok][order]
    if not (centre_width > 0).any():
        return np.zeros_like(centre_width)
    dist, (ir, ic) = distance_transform_edt(centre_width == 0, return_indices=True)
    w_px = centre_width[ir, ic] / view.mm_per_px
    sigma = np.maximum(w_px / 2.5, 0.6)
    amplitude = np.minimum(1.0, w_px / (sigma * 2.5))
    return (amplitude * np.exp(-0.5 * (dist / sigma) ** 2)).astype(np.float32)


def _disc_masks(geom: EyeGeometry, x: np.ndarray, y: np.ndarray, soft_mm: float) -> tuple[np.ndarray, np.ndarray]:
    rx, ry = geom.disc_radii
    rho = np.sqrt(((x - geom.disc[0]) / rx) ** 2 + ((y - geom.disc[1]) / ry) ** 2)
    disc = np.clip((1.0 - rho) * rx / soft_mm + 0.5, 0, 1)
    cup_rho = rho / geom.cup_ratio
    cup = np.clip((1.0 - cup_rho) * rx * geom.cup_ratio / (2 * soft_mm + 0.08) + 0.5, 0, 1)
    return disc, cup


def _spots(lesions: np.ndarray, x: np.ndarray, y: np.ndarray, sharpness: float) -> np.ndarray:
    """Soft union of round spots (rows x, y, r, ...); sharpness 1 soft Gaussian, larger = flatter top."""
    out = np.zeros(x.shape, np.float32)
    for lx, ly, r in lesions[:, :3]:
        box = (np.abs(x - lx) < 3 * r) & (np.abs(y - ly) < 3 * r)
        if not box.any():
            continue
        d2 = ((x[box] - lx) ** 2 + (y[box] - ly) ** 2) / r ** 2
        out[box] = np.maximum(out[box], np.exp(-0.5 * d2 ** sharpness))
    return out


def _blend(img: np.ndarray, mask: np.ndarray, rgb: np.ndarray) -> None:
    img *= 1.0 - mask[..., None]
    img += mask[..., None] * rgb


def fundus_reflectance(geom: EyeGeometry, view: FundusView) -> np.ndarray:
    """Linear RGB [h,w,3] of the fundus before optics (no vignetting or field stop)."""
    x, y = view.grid()
    soft = max(view.mm_per_px, 0.02)
    texture = geom.choroid_texture.sample(x, y)
    img = np.broadcast_to(BACKGROUND_RGB * geom.fundus_tint, x.shape + (3,)).copy()
    img *= (1.0 + np.array([0.05, 0.09, 0.09], np.float32) * texture[..., None])
    r_fovea = np.hypot(x - geom.fovea[0], y - geom.fovea[1])
    macula = np.exp(-0.5 * (r_fovea / 1.1) ** 2)
    img *= 1.0 - macula[..., None] * np.array([0.30, 0.42, 0.45], np.float32)
    reflex = 0.35 * np.exp(-0.5 * (r_fovea / max(0.05, soft)) ** 2)
    img += reflex[..., None] * np.array([0.8, 0.8, 0.7], np.float32)
    disc, cup = _disc_masks(geom, x, y, soft)
    halo = np.clip(1.0 - np.hypot(x - geom.disc[0], y - geom.disc[1]) / (1.6 * geom.disc_radii[1]), 0, 1)
    img *= 1.0 + 0.25 * halo[..., None] ** 2
    _blend(img, disc, DISC_RIM_RGB)
    _blend(img, 0.85 * cup, DISC_CUP_RGB)
    _blend(img, 0.8 * _spots(geom.drusen, x, y, 1.0), DRUSEN_RGB)
    _blend(img, 0.95 * _spots(geom.haemorrhages, x, y, 1.5), HAEMORRHAGE_RGB)
    _blend(img, 0.9 * _spots(geom.microaneurysms, x, y, 1.0), HAEMORRHAGE_RGB)
    for kind, rgb in ((ARTERY, ARTERY_RGB), (VEIN, VEIN_RGB)):
        _blend(img, 0.9 * vessel_opacity(geom, view, kind), rgb)
    _blend(img, _spots(geom.exudates, x, y, 2.0), EXUDATE_RGB)
    return img


def render_cf(geom: EyeGeometry, size: int, fov_radius_mm: float, rng: np.random.Generator) -> np.ndarray:
    """The colour fundus photo: uint8 [size, size, 3] with a circular field of view."""
    view = FundusView((0.0, 0.0), 2.06 * fov_radius_mm / size, size, size)
    img = fundus_reflectance(geom, view)
    x, y = view.grid()
    rho = np.hypot(x, y) / fov_radius_mm
    img *= (1.0 - 0.45 * rho ** 3)[..., None]
    field_stop = np.clip((1.0 - rho) * fov_radius_mm / max(view.mm_per_px, 0.01) + 0.5, 0, 1)
    img *= field_stop[..., None]
    img += 0.012 * rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def render_infrared(geom: EyeGeometry, height: int, width: int, field_width_mm: float,
                    rng: np.random.Generator) -> np.ndarray:
    """An infrared SLO-like grayscale fundus view centred on the fovea: uint8 [height, width]."""
    view = FundusView((float(geom.fovea[0]), float(geom.fovea[1])), field_width_mm / width, height, width)
    rgb = fundus_reflectance(geom, view)
    gray = 0.75 * rgb[..., 0] + 0.25 * rgb[..., 1]
    x, y = view.grid()
    rho = np.hypot(x - view.centre[0], y - view.centre[1]) / (0.6 * field_width_mm)
    gray = gray * (1.0 - 0.3 * rho ** 2) * 0.8
    gray += 0.02 * rng.standard_normal(gray.shape).astype(np.float32)
    return np.clip(gray * 255.0 + 0.5, 0, 255).astype(np.uint8)

"""Render the phantom's colour fundus photo (and an infrared SLO-like view) from its geometry.

Colours are built in linear [0,1] RGB as a base layer (orange-red fundus with choroidal texture,
darker macula, foveal reflex, optic disc with cup) over which vessels and lesions are blended by
soft masks, then vignetting and a circular field stop are applied.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt

from eyeoct.data.phantom.geometry import EyeGeometry
from eyeoct.data.phantom.vessels import ARTERY, VEIN

BACKGROUND_RGB = np.array([0.86, 0.34, 0.12], np.float32)
ARTERY_RGB = np.array([0.70, 0.20, 0.10], np.float32)
VEIN_RGB = np.array([0.46, 0.08, 0.05], np.float32)
DISC_RIM_RGB = np.array([0.94, 0.62, 0.30], np.float32)
DISC_CUP_RGB = np.array([0.99, 0.86, 0.58], np.float32)
ATROPHY_RGB = np.array([0.97, 0.84, 0.66], np.float32)  # bare sclera seen through peripapillary atrophy
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


def vessel_opacity(geom: EyeGeometry, view: FundusView, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """Opacity [h,w] in [0,1] of the vessels of one kind: a Gaussian cross-section around the
    nearest segment (found through a distance transform of the rasterised centrelines, then measured
    exactly), with lower contrast for thin vessels (less blood) and for sub-pixel ones; and the
    central light reflex [h,w] in [0,1], a thin line along vessels wider than a few pixels."""
    tree = geom.vessels
    sel = np.flatnonzero(tree.kind == kind)
    p0 = view.to_pixels(tree.p0[sel])
    p1 = view.to_pixels(tree.p1[sel])
    n = np.maximum(1, np.ceil(np.linalg.norm(p1 - p0, axis=1) / 0.5).astype(int))
    seg = np.repeat(np.arange(len(sel)), n)
    t = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + 0.5) / np.repeat(n, n)
    pts = np.round(p0[seg] + (p1[seg] - p0[seg]) * t[:, None]).astype(int)
    ok = (pts[:, 0] >= 0) & (pts[:, 0] < view.width) & (pts[:, 1] >= 0) & (pts[:, 1] < view.height)
    if not ok.any():
        return np.zeros((2, view.height, view.width), np.float32)
    seg, pts = seg[ok], pts[ok]
    order = np.argsort(tree.width[sel][seg], kind="stable")  # wider vessels win shared pixels
    nearest_seg = np.full((view.height, view.width), -1, np.int64)
    nearest_seg[pts[order, 1], pts[order, 0]] = seg[order]
    _, (ir, ic) = distance_transform_edt(nearest_seg < 0, return_indices=True)
    idx = nearest_seg[ir, ic]
    a, b = p0[idx], p1[idx]
    rows, cols = np.mgrid[0:view.height, 0:view.width].astype(np.float32)
    pix = np.stack([cols, rows], axis=-1)
    ab = b - a
    u = np.clip(((pix - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-9), 0.0, 1.0)
    dist = np.linalg.norm(pix - (a + u[..., None] * ab), axis=-1)
    w_mm = tree.width[sel][idx]
    w_px = w_mm / view.mm_per_px
    sigma = np.maximum(w_px / 2.5, 0.6)
    amplitude = (1.0 - np.exp(-w_mm / 0.06)) * np.minimum(1.0, w_px / (sigma * 2.5))
    opacity = amplitude * np.exp(-0.5 * (dist / sigma) ** 2)
    reflex = np.clip((w_px - 3.0) / 3.0, 0.0, 1.0) * np.exp(-0.5 * (dist / np.maximum(0.12 * w_px, 0.5)) ** 2)
    return opacity.astype(np.float32), reflex.astype(np.float32)


def _disc_masks(geom: EyeGeometry, x: np.ndarray, y: np.ndarray, soft_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Soft masks of the optic disc (an ellipse) and of its cup (the same ellipse scaled by cup_ratio)."""
    rx, ry = geom.disc_radii
    rho = np.sqrt(((x - geom.disc[0]) / rx) ** 2 + ((y - geom.disc[1]) / ry) ** 2)
    disc = np.clip((1.0 - rho) * rx / soft_mm + 0.5, 0, 1)
    cup_rho = rho / geom.cup_ratio
    cup = np.clip((1.0 - cup_rho) * rx * geom.cup_ratio / (2 * soft_mm + 0.08) + 0.5, 0, 1)
    return disc, cup


def myopic_crescent_width_mm(myopia: float) -> float:
    """Width of the peripapillary atrophy crescent: none up to myopia 0.2, then growing to 0.8 mm at 1."""
    return max(0.0, myopia - 0.2)


def _myopic_crescent(geom: EyeGeometry, x: np.ndarray, y: np.ndarray, soft_mm: float) -> np.ndarray:
    """Soft mask of the atrophic crescent at the disc's temporal edge (the side facing the fovea),
    where the retina and choroid pull away from the disc as a long eye stretches."""
    width = myopic_crescent_width_mm(geom.myopia)
    if width <= 0.0:
        return np.zeros(x.shape, np.float32)
    rx, ry = geom.disc_radii
    dx, dy = x - geom.disc[0], y - geom.disc[1]
    rho = np.sqrt((dx / (rx + width)) ** 2 + (dy / ry) ** 2)
    outer = np.clip((1.0 - rho) * (rx + width) / soft_mm + 0.5, 0, 1)
    towards = geom.fovea - geom.disc
    facing = (dx * towards[0] + dy * towards[1]) / (np.hypot(dx, dy) * np.linalg.norm(towards) + 1e-6)
    return (outer * np.clip(2.0 * facing, 0, 1)).astype(np.float32)


def _spots(lesions: np.ndarray, x: np.ndarray, y: np.ndarray, sharpness: float, pixel_mm: float) -> np.ndarray:
    """Soft union of round spots (rows x, y, r, ...); sharpness 1 soft Gaussian, larger = flatter top.
    Spots smaller than a pixel are widened to one pixel with their contrast lowered by the area ratio."""
    out = np.zeros(x.shape, np.float32)
    for lx, ly, r in lesions[:, :3]:
        r_drawn = max(r, 0.6 * pixel_mm)
        box = (np.abs(x - lx) < 3 * r_drawn) & (np.abs(y - ly) < 3 * r_drawn)
        if not box.any():
            continue
        d2 = ((x[box] - lx) ** 2 + (y[box] - ly) ** 2) / r_drawn ** 2
        out[box] = np.maximum(out[box], (r / r_drawn) ** 2 * np.exp(-0.5 * d2 ** sharpness))
    return out


def _blend(img: np.ndarray, mask: np.ndarray, rgb: np.ndarray) -> None:
    img *= 1.0 - mask[..., None]
    img += mask[..., None] * rgb


def fundus_reflectance(geom: EyeGeometry, view: FundusView) -> np.ndarray:
    """Linear RGB [h,w,3] of the fundus before optics (no vignetting or field stop)."""
    x, y = view.grid()
    soft = max(view.mm_per_px, 0.02)
    texture = geom.choroid_texture.sample(x, y)
    pallor = 1.0 + geom.myopia * np.array([0.0, 0.2, 0.25], np.float32)  # thin, less pigmented fundus
    img = np.broadcast_to(BACKGROUND_RGB * geom.fundus_tint * pallor, x.shape + (3,)).copy()
    tessellation = 1.0 + 3.0 * geom.myopia  # choroidal vessels show through the thin fundus of a long eye
    img *= (1.0 + np.array([0.025, 0.05, 0.05], np.float32) * tessellation * texture[..., None])
    r_fovea = np.hypot(x - geom.fovea[0], y - geom.fovea[1])
    macula = np.exp(-0.5 * (r_fovea / 1.1) ** 2)
    img *= 1.0 - macula[..., None] * np.array([0.30, 0.42, 0.45], np.float32)
    reflex_sigma = max(0.05, soft)  # keep the reflex's total light when it is smaller than a pixel
    reflex = 0.35 * (0.05 / reflex_sigma) ** 2 * np.exp(-0.5 * (r_fovea / reflex_sigma) ** 2)
    img += reflex[..., None] * np.array([0.8, 0.8, 0.7], np.float32)
    disc, cup = _disc_masks(geom, x, y, max(soft, 0.06))
    halo = np.clip(1.0 - np.hypot(x - geom.disc[0], y - geom.disc[1]) / (1.6 * geom.disc_radii[1]), 0, 1)
    img *= 1.0 + 0.25 * halo[..., None] ** 2
    _blend(img, 0.85 * _myopic_crescent(geom, x, y, max(soft, 0.04)), ATROPHY_RGB)
    _blend(img, 0.9 * disc, DISC_RIM_RGB)
    _blend(img, 0.8 * cup, DISC_CUP_RGB)
    _blend(img, 0.8 * _spots(geom.drusen, x, y, 1.0, view.mm_per_px), DRUSEN_RGB)
    _blend(img, 0.9 * _spots(geom.haemorrhages, x, y, 3.0, view.mm_per_px), HAEMORRHAGE_RGB)
    _blend(img, 0.9 * _spots(geom.microaneurysms, x, y, 1.0, view.mm_per_px), HAEMORRHAGE_RGB)
    for kind, rgb, shine in ((ARTERY, ARTERY_RGB, 0.35), (VEIN, VEIN_RGB, 0.15)):
        opacity, reflex = vessel_opacity(geom, view, kind)
        _blend(img, opacity, rgb)
        img += (shine * reflex)[..., None] * np.array([0.9, 0.6, 0.45], np.float32)
    _blend(img, _spots(geom.exudates, x, y, 2.0, view.mm_per_px), EXUDATE_RGB)
    return img


def render_cf(geom: EyeGeometry, size: int, fov_radius_mm: float, rng: np.random.Generator) -> np.ndarray:
    """The colour fundus photo: uint8 [size, size, 3] with a circular field of view."""
    view = FundusView((0.0, 0.0), 2.06 * fov_radius_mm / size, size, size)
    img = fundus_reflectance(geom, view)
    x, y = view.grid()
    rho = np.hypot(x, y) / fov_radius_mm
    img *= 1.0 - np.array([0.4, 0.55, 0.6], np.float32) * (rho ** 3)[..., None]  # edges darker and redder
    field_stop = np.clip((1.0 - rho) * fov_radius_mm / max(view.mm_per_px, 0.01) + 0.5, 0, 1)
    img *= field_stop[..., None]
    img += 0.012 * rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def render_infrared(geom: EyeGeometry, height: int, width: int, field_width_mm: float,
                    rng: np.random.Generator) -> np.ndarray:
    """An infrared SLO-like grayscale view centred on the fovea: uint8 [height, width]. In infrared
    the disc is dark, the macula barely darker, vessels dark, exudates and drusen bright."""
    view = FundusView((float(geom.fovea[0]), float(geom.fovea[1])), field_width_mm / width, height, width)
    x, y = view.grid()
    gray = 0.55 * (1.0 + 0.05 * geom.choroid_texture.sample(x, y))
    r_fovea = np.hypot(x - geom.fovea[0], y - geom.fovea[1])
    gray *= 1.0 - 0.12 * np.exp(-0.5 * (r_fovea / 0.8) ** 2)
    disc, cup = _disc_masks(geom, x, y, max(view.mm_per_px, 0.02))
    gray *= 1.0 - 0.35 * disc - 0.3 * cup
    for lesions, level in ((geom.drusen, 0.7), (geom.exudates, 0.85), (geom.haemorrhages, 0.25),
                           (geom.microaneurysms, 0.3)):
        spots = _spots(lesions, x, y, 2.0, view.mm_per_px)
        gray += spots * (level - gray)
    for kind, level in ((ARTERY, 0.3), (VEIN, 0.22)):
        opacity, reflex = vessel_opacity(geom, view, kind)
        gray += opacity * (level - gray) + 0.15 * reflex
    rho = np.hypot(x - view.centre[0], y - view.centre[1]) / (0.6 * field_width_mm)
    gray = gray * (1.0 - 0.25 * rho ** 2) + 0.02 * rng.standard_normal(gray.shape).astype(np.float32)
    return np.clip(gray * 255.0 + 0.5, 0, 255).astype(np.uint8)

"""What the phantom's vessels and lesions do to a B-scan (drawn in place on a display-scale image).

Retinal vessels sit in the inner retina: a bright spot with a shadow below it. Hard exudates are
bright foci at the outer plexiform layer with a faint shadow, haemorrhages make the inner retina
hyperreflective and shadow everything beneath, cysts are dark holes in the INL/ONL. Round lesions
are treated as balls: a scan at distance d from the centre of a lesion of radius r cuts it over
|s - s0| < sqrt(r^2 - d^2), with a height profile sqrt(1 - (d_col / r)^2).
"""
from __future__ import annotations

import numpy as np

from eyeoct.data.phantom.geometry import EyeGeometry
from eyeoct.data.phantom.layers import ScanGrid, soft_step
from eyeoct.data.phantom.vessels import VEIN

VESSEL_SHADOW = {0: 0.7, 1: 0.8}  # artery, vein: attenuation below a vessel >= 0.1 mm wide
VESSEL_INVISIBLE_MM = 0.02  # capillary-sized vessels neither show nor shadow
VESSEL_BRIGHTNESS = 0.85
CYST_FLUID = 0.06  # about as dark as the vitreous


def find_vessel_crossings(geom: EyeGeometry, grid: ScanGrid) -> list[dict]:
    """Where the scan line crosses (visible) vessel segments: column, s_mm, width_mm, kind, sin_angle."""
    tree = geom.vessels
    u = grid.direction.astype(np.float64)
    d = (tree.p1 - tree.p0).astype(np.float64)
    w = (tree.p0 - geom.fovea).astype(np.float64)
    den = u[0] * d[:, 1] - u[1] * d[:, 0]
    safe = np.where(np.abs(den) > 1e-9, den, np.inf)
    s = (w[:, 0] * d[:, 1] - w[:, 1] * d[:, 0]) / safe
    t = (w[:, 0] * u[1] - w[:, 1] * u[0]) / safe
    half = len(grid.s) * grid.mm_per_col / 2
    hit = np.isfinite(safe) & (t >= 0) & (t < 1) & (np.abs(s) < half) & (tree.width > VESSEL_INVISIBLE_MM)
    out = []
    for i in np.flatnonzero(hit):
        col = int(np.clip((s[i] + half) // grid.mm_per_col, 0, len(grid.s) - 1))
        sin_angle = abs(den[i]) / max(np.linalg.norm(d[i]), 1e-9)
        out.append({"column": col, "s_mm": round(float(s[i]), 4), "width_mm": round(float(tree.width[i]), 4),
                    "kind": "vein" if tree.kind[i] == VEIN else "artery", "sin_angle": round(float(sin_angle), 3)})
    return sorted(out, key=lambda c: c["s_mm"])


def _column_window(grid: ScanGrid, s0: float, half_extent: float) -> np.ndarray:
    half = len(grid.s) * grid.mm_per_col / 2
    lo = int(np.floor((s0 - half_extent + half) / grid.mm_per_col)) - 1
    hi = int(np.ceil((s0 + half_extent + half) / grid.mm_per_col)) + 1
    return np.arange(max(lo, 0), min(hi, len(grid.s)))


def draw_vessels(img: np.ndarray, grid: ScanGrid, bounds: dict, crossings: list[dict]) -> None:
    """Bright spot in the inner retina and a shadow below, for every crossing vessel."""
    soft = max(grid.mm_per_row, 0.003)
    for c in crossings:
        w, s0 = c["width_mm"], c["s_mm"]
        half_w = min(0.5 * w / max(c["sin_angle"], 0.2), 1.5 * w)
        sigma_s = max(half_w / 1.2, 0.6 * grid.mm_per_col)
        cols = _column_window(grid, s0, 3 * sigma_s)
        if len(cols) == 0:
            continue
        across = np.exp(-0.5 * ((grid.s[cols] - s0) / sigma_s) ** 2)[None, :]
        rnfl = bounds["gcl_top"][cols] - bounds["ilm"][cols]
        zc = (bounds["ilm"][cols] + np.maximum(0.5 * w + 0.004, 0.5 * rnfl))[None, :]
        visibility = float(np.clip((w - VESSEL_INVISIBLE_MM) / (0.1 - VESSEL_INVISIBLE_MM), 0.0, 1.0))
        strength = VESSEL_SHADOW[1 if c["kind"] == "vein" else 0] * visibility
        below = soft_step(grid.z, zc, soft)
        img[:, cols] *= 1.0 - strength * across * below
        sigma_z = max(w / 2.5, 0.6 * grid.mm_per_row)
        blob = across * np.exp(-0.5 * ((grid.z - zc + 0.2 * w) / sigma_z) ** 2)
        img[:, cols] += visibility * blob * (VESSEL_BRIGHTNESS - img[:, cols])


def _cut_profile(lesions: np.ndarray, grid: ScanGrid) -> np.ndarray:
    """[n, W] height profile in [0, 1] of each round lesion along the scan (0 where not cut)."""
    if len(lesions) == 0:
        return np.zeros((0, len(grid.s)), np.float32)
    d2 = (grid.x[None, :] - lesions[:, :1]) ** 2 + (grid.y[None, :] - lesions[:, 1:2]) ** 2
    r2 = lesions[:, 2:3] ** 2
    return np.sqrt(np.clip(1.0 - d2 / r2, 0.0, None)).astype(np.float32)


def _band(z: np.ndarray, centre: np.ndarray, half_height: np.ndarray, soft: float) -> np.ndarray:
    return np.clip((half_height - np.abs(z - centre)) / soft + 0.5, 0.0, 1.0)


def draw_lesions(img: np.ndarray, geom: EyeGeometry, grid: ScanGrid, bounds: dict) -> None:
    """Cysts, hard exudates and haemorrhages cut by this scan."""
    soft = max(grid.mm_per_row, 0.003)
    for lesion, prof in zip(geom.cysts, _cut_profile(geom.cysts, grid)):
        cols = np.flatnonzero(prof > 0)
        if len(cols) == 0:
            continue
        top, bottom = bounds["inl_top"][cols], bounds["elm_top"][cols]
        centre = top + 0.55 * (bottom - top)
        half = np.minimum(0.6 * lesion[2], 0.42 * (bottom - top)) * prof[cols]
        hole = _band(grid.z, centre[None, :], half[None, :], soft)
        img[:, cols] += hole * (CYST_FLUID - img[:, cols])
    for lesion, prof in zip(geom.exudates, _cut_profile(geom.exudates, grid)):
        cols = np.flatnonzero(prof > 0)
        if len(cols) == 0:
            continue
        centre = bounds["opl_top"][cols][None, :]
        half = np.maximum(0.6 * lesion[2] * prof[cols], 0.5 * soft)[None, :]
        img[:, cols] *= 1.0 - 0.45 * prof[cols][None, :] * (grid.z > centre + half)
        img[:, cols] += _band(grid.z, centre, half, soft) * (0.97 - img[:, cols])
    for prof in _cut_profile(geom.haemorrhages, grid):
        cols = np.flatnonzero(prof > 0)
        if len(cols) == 0:
            continue
        inner = (grid.z > bounds["gcl_top"][cols][None, :]) & (grid.z < bounds["opl_top"][cols][None, :])
        img[:, cols] += 0.3 * prof[cols][None, :] * inner
        img[:, cols] *= 1.0 - 0.7 * prof[cols][None, :] * (grid.z >= bounds["opl_top"][cols][None, :])

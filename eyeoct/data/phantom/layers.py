"""Retinal layer depths of the phantom at any fundus position (the OCT's anatomy), and the pixel
grid of a B-scan through those positions.

Depths z are in mm below the top of the B-scan. Layer thicknesses are smooth functions of the
eccentricity from the fovea (foveal pit: the inner layers thin out to nothing at the centre), the
distance from the disc (RNFL thickens toward it, most in the superior/inferior bundles), a hidden
random thickness texture, macular oedema (INL/ONL thickening) and drusen (which lift the RPE).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eyeoct.data.phantom.geometry import EyeGeometry

# Layers from the vitreous down with their (noise-free, display-scale) reflectivity. Each entry is
# the layer below the boundary of the same name; "vitreous" is above the first boundary.
VITREOUS = 0.07
LAYER_REFLECTIVITY = {
    "ilm": 0.62,        # RNFL
    "gcl_top": 0.38,    # GCL
    "ipl_top": 0.44,    # IPL
    "inl_top": 0.24,    # INL
    "opl_top": 0.42,    # OPL
    "onl_top": 0.18,    # ONL (with Henle fibres)
    "elm_top": 0.32,    # external limiting membrane
    "is_top": 0.22,     # photoreceptor inner segments (myoid)
    "ez_top": 0.84,     # ellipsoid zone
    "os_top": 0.55,     # outer segments
    "iz_top": 0.74,     # interdigitation zone
    "rpe_top": 0.92,    # RPE
    "rpe_bottom": 0.34, # drusen material between RPE and Bruch's membrane
    "bm": 0.0,          # choroid: drawn separately with its texture
}
BOUNDARY_NAMES = tuple(LAYER_REFLECTIVITY)


def drusen_lift(geom: EyeGeometry, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height in mm by which drusen raise the RPE at (x, y): a smooth dome per druse, the highest wins."""
    lift = np.zeros(np.shape(x), np.float32)
    for dx, dy, r, h in geom.drusen:
        d2 = ((x - dx) ** 2 + (y - dy) ** 2) / r ** 2
        lift = np.maximum(lift, h * np.clip(1.0 - d2, 0.0, None) ** 1.5)
    return lift


def oedema_thickening(geom: EyeGeometry, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Extra retinal thickness in mm from macular oedema at (x, y)."""
    if geom.oedema is None:
        return np.zeros(np.shape(x), np.float32)
    o = geom.oedema
    return (o.amplitude * np.exp(-0.5 * ((x - o.x) ** 2 + (y - o.y) ** 2) / o.sigma ** 2)).astype(np.float32)


def layer_thickness(geom: EyeGeometry, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Thickness in mm of every layer at fundus positions (x, y)."""
    r = np.hypot(x - geom.fovea[0], y - geom.fovea[1])
    pit = 1.0 - np.exp(-(r / 0.45) ** 2.5)
    to_disc = np.hypot(x - geom.disc[0], y - geom.disc[1])
    bundle = np.abs(y - geom.disc[1]) / np.maximum(to_disc, 1e-3)
    near_disc = np.exp(-np.maximum(to_disc - geom.disc_radii[0], 0.0) / 1.5)
    vary = 1.0 + 0.07 * geom.thickness_texture.sample(x, y)
    oedema = oedema_thickening(geom, x, y)
    parafovea = np.exp(-((r - 1.1) / 1.7) ** 2)
    return {
        "rnfl": pit ** 1.5 * (0.008 + 0.11 * near_disc * (0.55 + 0.45 * bundle)) * vary,
        "gcl": 0.058 * pit ** 1.3 * (0.45 + 0.55 * parafovea) * vary,
        "ipl": 0.040 * pit ** 1.1 * (0.6 + 0.4 * parafovea) * vary,
        "inl": 0.038 * pit * (0.7 + 0.3 * parafovea) * vary + 0.3 * oedema,
        "opl": (0.022 * pit ** 0.7 + 0.004) * vary,
        "onl": (0.062 + 0.035 * np.exp(-(r / 0.6) ** 2)) * vary + 0.7 * oedema,
        "elm": np.full_like(r, 0.005),
        "is": 0.022 + 0.008 * np.exp(-(r / 0.5) ** 2),
        "ez": np.full_like(r, 0.011),
        "os": 0.016 + 0.012 * np.exp(-(r / 0.45) ** 2),
        "iz": np.full_like(r, 0.008),
        "rpe": np.full_like(r, 0.022),
    }


def bruch_depth(geom: EyeGeometry, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Depth in mm of Bruch's membrane: a bowl (the eye's curvature) with a small tilt."""
    dx, dy = x - geom.fovea[0], y - geom.fovea[1]
    return (geom.retina_depth_mm - geom.retina_curvature * (dx ** 2 + dy ** 2)
            + geom.retina_tilt[0] * dx + geom.retina_tilt[1] * dy).astype(np.float32)


def layer_boundaries(geom: EyeGeometry, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Depth in mm of every boundary in BOUNDARY_NAMES (plus "csi", the choroid-sclera interface)."""
    t = layer_thickness(geom, x, y)
    bm = bruch_depth(geom, x, y)
    lift = drusen_lift(geom, x, y)
    z = {"bm": bm, "csi": bm + geom.choroid_thickness_mm, "rpe_bottom": bm - lift}
    z["rpe_top"] = z["rpe_bottom"] - t["rpe"]
    z["iz_top"] = z["rpe_top"] - t["iz"]
    z["os_top"] = z["iz_top"] - t["os"]
    z["ez_top"] = z["os_top"] - t["ez"]
    z["is_top"] = z["ez_top"] - t["is"]
    z["elm_top"] = z["is_top"] - t["elm"]
    # the ONL above a druse is compressed, so the inner retina rises by only part of the lift
    z["onl_top"] = z["elm_top"] - np.maximum(t["onl"] - 0.7 * lift, 0.3 * t["onl"])
    z["opl_top"] = z["onl_top"] - t["opl"]
    z["inl_top"] = z["opl_top"] - t["inl"]
    z["ipl_top"] = z["inl_top"] - t["ipl"]
    z["gcl_top"] = z["ipl_top"] - t["gcl"]
    z["ilm"] = z["gcl_top"] - t["rnfl"]
    return z


@dataclass(frozen=True)
class ScanGrid:
    """Pixel grid of one B-scan: columns along the scan line, rows in depth (all in mm)."""

    s: np.ndarray  # [W] position along the scan
    x: np.ndarray  # [W] fundus x of each column
    y: np.ndarray  # [W] fundus y of each column
    z: np.ndarray  # [H, 1] depth of each row
    direction: np.ndarray  # [2] unit vector of the scan on the fundus
    mm_per_col: float
    mm_per_row: float


def scan_grid(geom: EyeGeometry, angle_deg: float, height: int, width: int, length_mm: float,
              depth_mm: float) -> ScanGrid:
    """The grid of a scan through the fovea at `angle_deg` (counter-clockwise as viewed in the CF)."""
    a = np.deg2rad(angle_deg)
    direction = np.array([np.cos(a), -np.sin(a)], np.float32)
    s = (-length_mm / 2 + (np.arange(width, dtype=np.float32) + 0.5) * length_mm / width)
    z = ((np.arange(height, dtype=np.float32) + 0.5) * depth_mm / height)[:, None]
    return ScanGrid(s, geom.fovea[0] + s * direction[0], geom.fovea[1] + s * direction[1], z,
                    direction, length_mm / width, depth_mm / height)


def soft_step(z: np.ndarray, edge: np.ndarray, softness: float) -> np.ndarray:
    """0 above `edge`, 1 below, with a linear ramp `softness` mm wide (partial-volume anti-aliasing)."""
    return np.clip((z - edge) / softness + 0.5, 0.0, 1.0)

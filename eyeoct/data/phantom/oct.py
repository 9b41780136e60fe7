"""Render the phantom's six radial OCT B-scans through the fovea.

Slice k runs at angle 30k degrees (counter-clockwise as viewed in the CF), from s = -L/2 to +L/2
along the direction (cos a, -sin a) through the fovea; column j samples s = -L/2 + (j + 0.5) L / W.
Rows sample depth z = (i + 0.5) D / H below the top. Intensities are built on a display scale in
[0, 1]: soft-edged layer bands, a textured choroid that fades with depth, then vessels (bright spot
in the inner retina, shadow below), lesions, and finally multiplicative speckle unless noise-free.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from eyeoct.case_layout import NUM_SLICES
from eyeoct.data.phantom.fields import SmoothField
from eyeoct.data.phantom.geometry import EyeGeometry
from eyeoct.data.phantom.layers import (BOUNDARY_NAMES, LAYER_REFLECTIVITY, VITREOUS, ScanGrid, layer_boundaries,
                                        scan_grid, soft_step)
from eyeoct.data.phantom.oct_lesions import draw_lesions, draw_vessels, find_vessel_crossings

SLICE_ANGLES_DEG = tuple(180.0 / NUM_SLICES * k for k in range(NUM_SLICES))  # 0, 30, ..., 150
CHOROID_DEPTH_STRETCH = 2.0  # choroidal vessels look about twice as wide as deep in mm


def choroid_section(rng: np.random.Generator, length_mm: float, max_depth_mm: float,
                    pixel_mm: float) -> tuple[SmoothField, SmoothField]:
    """Random textures of one section through the choroid (s along the scan, stretched depth):
    small vessels (choriocapillaris/Sattler) near Bruch's membrane, large ones (Haller) deeper.
    Detail finer than the B-scan's pixels (`pixel_mm`) is not drawn, which keeps small scans fast."""
    s_range = (-length_mm / 2 - 0.1, length_mm / 2 + 0.1)
    z_range = (0.0, CHOROID_DEPTH_STRETCH * max_depth_mm)
    fine = max(0.022, pixel_mm)
    coarse = max(0.05, 1.5 * pixel_mm)
    return (SmoothField.random(rng, s_range, z_range, fine / 1.8, fine),
            SmoothField.random(rng, s_range, z_range, coarse / 2.5, coarse))


def _choroid(grid: ScanGrid, bounds: dict, textures: tuple[SmoothField, SmoothField], soft: float) -> np.ndarray:
    """Choroid and sclera below Bruch's membrane: stroma with dark vessel lumens, fading with depth.
    The texture is sampled only in the band of rows that can hold choroid."""
    out = np.zeros((grid.z.shape[0], grid.s.shape[0]), np.float32)
    first = int(np.clip(np.floor(bounds["bm"].min() / grid.mm_per_row) - 2, 0, out.shape[0]))
    last = int(np.clip(np.ceil((bounds["csi"].max() + 0.06) / grid.mm_per_row) + 2, first, out.shape[0]))
    z = grid.z[first:]
    below_csi = soft_step(z, bounds["csi"][None, :], 0.03)
    out[first:] = below_csi * 0.12 * np.exp(-np.clip(z - bounds["csi"][None, :], 0.0, None) / 0.25)
    z = grid.z[first:last]
    depth = np.clip(z - bounds["bm"][None, :], 0.0, None)
    s = np.broadcast_to(grid.s[None, :], depth.shape)
    fine, coarse = (t.sample(s, CHOROID_DEPTH_STRETCH * depth) for t in textures)
    deep = np.clip(depth / 0.12, 0.0, 1.0)
    lumen = (1.0 - deep) * fine + deep * coarse
    stroma = 0.36 * np.exp(-depth / 0.25) * (0.72 - 0.24 * np.tanh(1.6 * (lumen - 0.2)))
    capillaris = 0.2 * np.exp(-depth / 0.015)
    in_choroid = soft_step(z, bounds["bm"][None, :], soft) * (1.0 - below_csi[: last - first])
    out[first:last] += in_choroid * (stroma + capillaris)
    return out


def _layers(geom: EyeGeometry, grid: ScanGrid, textures: tuple[SmoothField, SmoothField]) -> tuple[np.ndarray, dict]:
    bounds = layer_boundaries(geom, grid.x, grid.y)
    soft = max(grid.mm_per_row, 0.003)
    img = np.full((grid.z.shape[0], grid.s.shape[0]), VITREOUS, np.float32)
    previous = VITREOUS
    for name in BOUNDARY_NAMES:
        value = LAYER_REFLECTIVITY[name]
        img += (value - previous) * soft_step(grid.z, bounds[name][None, :], soft)
        previous = value
    return img + _choroid(grid, bounds, textures, soft), bounds


def _speckle(img: np.ndarray, rng: np.random.Generator, looks: float) -> np.ndarray:
    """Multiplicative speckle on the display scale (a compressed intensity, hence the square root):
    the intensity gets gamma noise of `looks` averaged frames, a grain of about 2x1 px,
    plus a slight brightness variation from A-scan to A-scan."""
    grain = rng.gamma(looks, 1.0 / looks, size=img.shape).astype(np.float32)
    grain = gaussian_filter(grain, (0.5, 0.8), truncate=2.5)
    grain /= grain.mean()
    gain = 1.0 + 0.04 * rng.standard_normal((1, img.shape[1])).astype(np.float32)
    return img * grain ** 0.5 * gain


def boundary_rows(geom: EyeGeometry, height: int, width: int, length_mm: float, depth_mm: float,
                  names: tuple[str, ...] = ("ilm", "rpe_bottom")) -> dict[str, np.ndarray]:
    """True depth of the named boundaries (BOUNDARY_NAMES, "csi") in fractional pixel rows, [6, width] each.

    Row i samples depth (i + 0.5) D / H and a layer edge is drawn half-way up its soft step at the boundary
    depth z, so the boundary lies at row z H / D - 0.5 (column j as in the rendered B-scan)."""
    rows = {name: np.empty((NUM_SLICES, width), np.float64) for name in names}
    for k, angle in enumerate(SLICE_ANGLES_DEG):
        grid = scan_grid(geom, angle, height, width, length_mm, depth_mm)
        bounds = layer_boundaries(geom, grid.x, grid.y)
        for name in names:
            rows[name][k] = bounds[name] / grid.mm_per_row - 0.5
    return rows


def render_bscans(geom: EyeGeometry, height: int, width: int, length_mm: float, depth_mm: float,
                  texture_rng: np.random.Generator, noise_rng: np.random.Generator | None,
                  speckle_looks: float = 1.0) -> tuple[np.ndarray, dict[int, list[dict]]]:
    """Six B-scans uint8 [6, height, width] and, per slice, the vessels crossing it
    (dicts with column, width_mm, kind). `noise_rng=None` renders without speckle."""
    pixel_mm = max(length_mm / width, CHOROID_DEPTH_STRETCH * depth_mm / height)
    textures = [choroid_section(texture_rng, length_mm, 0.6, pixel_mm) for _ in range(NUM_SLICES)]
    out = np.empty((NUM_SLICES, height, width), np.uint8)
    crossings: dict[int, list[dict]] = {}
    for k, angle in enumerate(SLICE_ANGLES_DEG):
        grid = scan_grid(geom, angle, height, width, length_mm, depth_mm)
        img, bounds = _layers(geom, grid, textures[k])
        crossings[k] = find_vessel_crossings(geom, grid)
        draw_vessels(img, grid, bounds, crossings[k])
        draw_lesions(img, geom, grid, bounds)
        if noise_rng is not None:
            img = _speckle(img, noise_rng, speckle_looks)
        out[k] = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out, crossings

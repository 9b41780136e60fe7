"""Render the phantom's six radial OCT B-scans through the fovea.

Slice k runs at angle 30k degrees (counter-clockwise as viewed in the CF), from s = -L/2 to +L/2
along the direction (cos a, -sin a) through the fovea; column j samples s = -L/2 + (j + 0.5) L / W.
Rows sample depth z = (i + 0.5) D / H below the top. Intensities are built on a display scale in
[0, 1]: soft-edged layer bands, a textured choroid that fades with depth, then vessels (bright spot
in the inner retina, shadow below), lesions, and finally multiplicative speckle unless noise-free.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eyeoct.data.phantom_fields import SmoothField
from eyeoct.data.phantom_geometry import EyeGeometry
from eyeoct.data.phantom_layers import BOUNDARY_NAMES, LAYER_REFLECTIVITY, VITREOUS, layer_boundaries
from eyeoct.data.phantom_oct_lesions import draw_lesions, find_vessel_crossings, draw_vessels

N_SLICES = 6
SLICE_ANGLES_DEG = tuple(30.0 * k for k in range(N_SLICES))
CHOROID_DEPTH_STRETCH = 2.0  # choroidal vessels look about twice as wide as deep in mm


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
    a = np.deg2rad(angle_deg)
    direction = np.array([np.cos(a), -np.sin(a)], np.float32)
    s = (-length_mm / 2 + (np.arange(width, dtype=np.float32) + 0.5) * length_mm / width)
    z = ((np.arange(height, dtype=np.float32) + 0.5) * depth_mm / height)[:, None]
    return ScanGrid(s, geom.fovea[0] + s * direction[0], geom.fovea[1] + s * direction[1], z,
                    direction, length_mm / width, depth_mm / height)


def soft_step(z: np.ndarray, edge: np.ndarray, softness: float) -> np.ndarray:
    """0 above `edge`, 1 below, with a linear ramp `softness` mm wide (partial-volume anti-aliasing)."""
    return np.clip((z - edge) / softness + 0.5, 0.0, 1.0)


def choroid_section(rng: np.random.Generator, length_mm: float, max_depth_mm: float) -> SmoothField:
    """Random texture of one section through the choroid (s along the scan, stretched depth)."""
    half = length_mm / 2 + 0.1
    return SmoothField.random(rng, (-half, half), (0.0, CHOROID_DEPTH_STRETCH * max_depth_mm), 0.015, 0.03)


def _layers(geom: EyeGeometry, grid: ScanGrid, texture: SmoothField) -> tuple[np.ndarray, dict]:
    bounds = layer_boundaries(geom, grid.x, grid.y)
    soft = max(grid.mm_per_row, 0.003)
    img = np.full((grid.z.shape[0], grid.s.shape[0]), VITREOUS, np.float32)
    previous = VITREOUS
    for name in BOUNDARY_NAMES:
        value = LAYER_REFLECTIVITY[name]
        img += (value - previous) * soft_step(grid.z, bounds[name][None, :], soft)
        previous = value
    below_bm = grid.z - bounds["bm"][None, :]
    in_choroid = soft_step(grid.z, bounds["bm"][None, :], soft) * (1.0 - soft_step(grid.z, bounds["csi"][None, :], 0.03))
    lumen = texture.sample(np.broadcast_to(grid.s[None, :], below_bm.shape),
                           CHOROID_DEPTH_STRETCH * np.clip(below_bm, 0.0, None))
    stroma = 0.62 * np.exp(-np.clip(below_bm, 0.0, None) / 0.22) * np.clip(1.0 - 0.45 * (lumen + 0.6), 0.1, 1.2)
    capillaris = 0.25 * np.exp(-np.clip(below_bm, 0.0, None) / 0.012)
    sclera = 0.09 * np.exp(-np.clip(grid.z - bounds["csi"][None, :], 0.0, None) / 0.2)
    img += in_choroid * (stroma + capillaris) + soft_step(grid.z, bounds["csi"][None, :], 0.03) * sclera
    return img, bounds


def _speckle(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative speckle on the linear signal (display = linear ** (1/2.2)) plus a noise floor."""
    linear = (img + 0.02) ** 2.2
    speckle = rng.gamma(1.6, 1.0 / 1.6, size=img.shape).astype(np.float32)
    gain = 1.0 + 0.05 * rng.standard_normal((1, img.shape[1])).astype(np.float32)
    return (linear * speckle * gain) ** (1.0 / 2.2)


def render_bscans(geom: EyeGeometry, height: int, width: int, length_mm: float, depth_mm: float,
                  texture_rng: np.random.Generator, noise_rng: np.random.Generator | None
                  ) -> tuple[np.ndarray, dict[int, list[dict]]]:
    """Six B-scans uint8 [6, height, width] and, per slice, the vessels crossing it
    (dicts with column, width_mm, kind). `noise_rng=None` renders without speckle."""
    textures = [choroid_section(texture_rng, length_mm, 0.6) for _ in range(N_SLICES)]
    out = np.empty((N_SLICES, height, width), np.uint8)
    crossings: dict[int, list[dict]] = {}
    for k, angle in enumerate(SLICE_ANGLES_DEG):
        grid = scan_grid(geom, angle, height, width, length_mm, depth_mm)
        img, bounds = _layers(geom, grid, textures[k])
        crossings[k] = find_vessel_crossings(geom, grid)
        draw_vessels(img, grid, bounds, crossings[k])
        draw_lesions(img, geom, grid, bounds)
        if noise_rng is not None:
            img = _speckle(img, noise_rng)
        out[k] = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out, crossings

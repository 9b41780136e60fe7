"""Smooth random fields on a millimetre grid, sampled at arbitrary positions.

The phantom draws every texture on a fixed grid in millimetres, so the same eye looks the same
at any output resolution; only the sampling positions depend on the image size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates


@dataclass(frozen=True)
class SmoothField:
    """A zero-mean, unit-std random field over a rectangle, with bilinear sampling."""

    values: np.ndarray  # [ny, nx] float32
    origin: tuple[float, float]  # (x0, y0) in mm of values[0, 0]
    spacing: float  # mm between grid points

    @classmethod
    def random(cls, rng: np.random.Generator, x_range: tuple[float, float], y_range: tuple[float, float],
               spacing: float, correlation_mm: float) -> "SmoothField":
        """White noise on the grid, Gaussian-smoothed with `correlation_mm`, normalised to std 1."""
        nx = int(np.ceil((x_range[1] - x_range[0]) / spacing)) + 1
        ny = int(np.ceil((y_range[1] - y_range[0]) / spacing)) + 1
        noise = rng.standard_normal((ny, nx), dtype=np.float32)
        smooth = gaussian_filter(noise, correlation_mm / spacing, mode="reflect", truncate=3.0)
        smooth -= smooth.mean()
        smooth /= max(float(smooth.std()), 1e-6)
        return cls(smooth, (x_range[0], y_range[0]), spacing)

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Field values at positions (x, y) in mm (any matching shapes); clamped at the border."""
        col = (np.asarray(x, np.float32) - self.origin[0]) / self.spacing
        row = (np.asarray(y, np.float32) - self.origin[1]) / self.spacing
        out = map_coordinates(self.values, [row.ravel(), col.ravel()], order=1, mode="nearest")
        return out.reshape(np.shape(x)).astype(np.float32)

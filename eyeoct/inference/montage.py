"""A one-look picture per input: the CF photo the model saw, beside its six generated B-scans."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

GAP = 4  # pixels of black between tiles
SLICE_COLUMNS = 3


def build_montage(cf_rgb: np.ndarray, slices: np.ndarray, tile_size: tuple[int, int] = (224, 160)) -> np.ndarray:
    """uint8 [h,w,3]: the CF (square, as tall as the grid) left of slices 0..5 in a 2x3 grid (row-major).

    `cf_rgb` is uint8 [h,w,3], `slices` uint8 [6,H,W]; every slice is resized to `tile_size` (width, height).
    """
    tile_w, tile_h = tile_size
    rows = -(-len(slices) // SLICE_COLUMNS)
    grid_h = rows * tile_h + (rows - 1) * GAP
    canvas = np.zeros((grid_h, grid_h + GAP + SLICE_COLUMNS * (tile_w + GAP) - GAP, 3), dtype=np.uint8)
    canvas[:, :grid_h] = np.asarray(Image.fromarray(cf_rgb).resize((grid_h, grid_h), Image.Resampling.BILINEAR))
    for k, array in enumerate(slices):
        tile = np.asarray(Image.fromarray(array).resize((tile_w, tile_h), Image.Resampling.BILINEAR))
        top = (k // SLICE_COLUMNS) * (tile_h + GAP)
        left = grid_h + GAP + (k % SLICE_COLUMNS) * (tile_w + GAP)
        canvas[top:top + tile_h, left:left + tile_w] = tile[:, :, None]
    return canvas


def save_montage(path: Path, cf_rgb: np.ndarray, slices: np.ndarray) -> Path:
    """Write `build_montage(cf_rgb, slices)` as a PNG at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(build_montage(cf_rgb, slices)).save(path)
    return path

"""Reading images as uint8 arrays, and finding the B-scan panel of OCT exports from their content.

`read_rgb` returns [h,w,3] and `read_gray` [H,W]; both convert grayscale, palette, RGBA and 16-bit
files to 8 bits. `read_oct_slice` reads a B-scan and, for Heidelberg-style two-panel exports
(infrared fundus panel beside the B-scan), keeps only the B-scan panel.

How the panel is found (no fixed row or column numbers):
1. Border bands whose rows/columns are flat (std <= `UNIFORM_STD` grey levels: white or black
   padding) are set aside.
2. Panel boundaries are columns where the mean absolute difference between the blocks of columns on
   either side is much larger than elsewhere in the image (a seam), at least half a panel height
   apart; they cut the image into candidate panels.
3. Each candidate is scored by its anisotropy, mean |d/dy| / mean |d/dx| after smoothing (sigma
   H/100): retinal layers make B-scans strongly layered (> `BSCAN_MIN_ANISOTROPY`; 1.9-4.2 on real
   Spectralis, Optovue and Bioptigen scans), fundus images are isotropic (1.0-1.2). The most layered
   candidate is the B-scan panel, merged with neighbours at least `MERGE_FRACTION` as layered (one
   B-scan cut by a spurious seam; a scan line drawn on the fundus panel is not enough). Flat columns
   at its sides (gaps between panels) and flat bright rows above or below it (white padding of a
   taller export) are trimmed; flat dark rows are kept, since B-scans often end in black rows.
4. An image with one panel is kept whole. Flat bright bands at its border (registration padding, as
   in the Duke DME exports) are filled with the B-scan's background level, so the size is unchanged
   and no white band reaches the model.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from scipy.ndimage import gaussian_filter

from eyeoct.data.errors import ImageReadError

logger = logging.getLogger(__name__)

UNIFORM_STD = 2.0  # grey levels: a row/column flatter than this is padding, not image content
BRIGHT_PADDING = 200.0  # mean grey level above which a flat border band counts as bright padding
SEAM_FACTOR = 4.0  # a panel seam differs this many times more than the median column boundary
SEAM_MIN_LEVEL = 15.0  # ... and by at least this many grey levels on average
BSCAN_MIN_ANISOTROPY = 1.5
MERGE_FRACTION = 0.7  # a neighbour this layered relative to the best panel is part of the same B-scan
ANALYSIS_ROWS = 128  # panel analysis works on images reduced to about this many rows
MAX_CHROMA = 8.0  # mean channel difference above which an "OCT" image is a colour picture
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _upright_opaque(img: Image.Image) -> Image.Image:
    """`img` turned as its EXIF Orientation tag says, with any transparency composited on black (a fundus
    photo's transparent surround stays dark, as the camera's surround is)."""
    img = ImageOps.exif_transpose(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        black = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, img.convert("RGBA")).convert("RGB" if img.mode != "LA" else "L")
    return img


def open_image(path: str | Path) -> Image.Image:
    """A decoded image, upright (EXIF orientation applied) and opaque (alpha composited on black); an
    `ImageReadError` naming the file when it is missing, empty or undecodable. Every reader goes through here."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"image file not found: {path}", path)
    if path.stat().st_size == 0:
        raise ImageReadError(f"cannot decode image {path}: the file is empty (0 bytes)", path)
    try:
        with Image.open(path) as img:
            img.load()
            return _upright_opaque(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageReadError(f"cannot decode image {path}: {err}", path) from err


def _high_depth_to_gray(img: Image.Image) -> np.ndarray | None:
    """16-bit and float single-channel images as uint8; None for ordinary 8-bit modes."""
    if img.mode in _SIXTEEN_BIT_MODES:
        arr = np.asarray(img, dtype=np.float32) / 257.0
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        if np.nanmax(arr) <= 1.0:
            arr = arr * 255.0
    else:
        return None
    return np.clip(np.rint(np.nan_to_num(arr)), 0, 255).astype(np.uint8)


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image as uint8 [h,w,3], upright and opaque (`open_image`); grayscale, palette and 16-bit are
    converted."""
    img = open_image(path)
    gray = _high_depth_to_gray(img)
    if gray is not None:
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def read_gray(path: str | Path) -> np.ndarray:
    """Read a grayscale image as uint8 [H,W]; an RGB file with grey content is accepted.

    Raises `ImageReadError` for colour pictures (e.g. pseudo-colour screenshots), which are not B-scans.
    """
    img = open_image(path)
    gray = _high_depth_to_gray(img)
    if gray is not None:
        return gray
    if img.mode not in ("L", "1"):
        chroma = mean_channel_difference(np.asarray(img.convert("RGB")))
        if chroma > MAX_CHROMA:
            raise ImageReadError(
                f"{path} is a colour image (mean channel difference {chroma:.1f} > {MAX_CHROMA}); "
                "an OCT B-scan must be grayscale (pseudo-colour screenshots are not supported)", path
            )
    return np.asarray(img.convert("L"), dtype=np.uint8).copy()


def mean_channel_difference(rgb: np.ndarray) -> float:
    """Mean of (|R - G| + |G - B|) / 2 over a uint8 [h,w,3] image, in grey levels: near 0 for grey content."""
    x = rgb.astype(np.int16)
    return float(np.mean(np.abs(x[..., 0] - x[..., 1]) + np.abs(x[..., 1] - x[..., 2]))) / 2


def read_oct_slice(path: str | Path) -> np.ndarray:
    """Read one OCT B-scan as uint8 [H,W], keeping only the B-scan panel of two-panel exports."""
    return crop_bscan_panel(read_gray(path))


def crop_bscan_panel(gray: np.ndarray) -> np.ndarray:
    """The B-scan panel of a grayscale export (see the module docstring), bright border padding filled."""
    rows, cols = locate_bscan_panel(gray)
    return _fill_bright_padding(gray[rows, cols])


def locate_bscan_panel(gray: np.ndarray) -> tuple[slice, slice]:
    """Row and column slices of the B-scan panel in `gray` [H,W]; the whole image if it has one panel."""
    if gray.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {gray.shape}")
    x = gray.astype(np.float32)
    whole = (slice(0, x.shape[0]), slice(0, x.shape[1]))
    box = _content_box(x)
    if box is None:
        return whole
    rows, cols = box
    content = x[rows, cols]
    segments = _split_at_seams(content)
    if len(segments) == 1:
        return whole
    scores = [_anisotropy(content[:, a:b]) for a, b in segments]
    best = int(np.argmax(scores))
    if scores[best] < BSCAN_MIN_ANISOTROPY:
        logger.warning("no panel of a %dx%d image looks like a B-scan (anisotropy %s); keeping it whole",
                       x.shape[0], x.shape[1], [round(s, 2) for s in scores])
        return whole
    merge_level = max(BSCAN_MIN_ANISOTROPY, MERGE_FRACTION * scores[best])
    first = last = best
    while first > 0 and scores[first - 1] >= merge_level:
        first -= 1
    while last < len(segments) - 1 and scores[last + 1] >= merge_level:
        last += 1
    panel_cols = slice(cols.start + segments[first][0], cols.start + segments[last][1])
    panel = _content_box(x[rows, panel_cols], bright_rows_only=True)
    if panel is None:
        return whole
    prow, pcol = panel
    return (slice(rows.start + prow.start, rows.start + prow.stop),
            slice(panel_cols.start + pcol.start, panel_cols.start + pcol.stop))


def _flat_run(x: np.ndarray, axis: int, bright_only: bool = False) -> tuple[int, int]:
    """Index range [start, stop) along `axis` left after dropping flat leading and trailing lines.

    A line (row for axis=1, column for axis=0) is flat if its std <= UNIFORM_STD; with `bright_only`
    it must also be bright padding (mean >= BRIGHT_PADDING): B-scans can end in genuinely black rows.
    """
    flat = x.std(axis=axis) <= UNIFORM_STD
    if bright_only:
        flat &= x.mean(axis=axis) >= BRIGHT_PADDING
    content = np.flatnonzero(~flat)
    if content.size == 0:
        return 0, 0
    return int(content[0]), int(content[-1]) + 1


def _content_box(x: np.ndarray, bright_rows_only: bool = False) -> tuple[slice, slice] | None:
    """Slices that drop flat border rows and columns of `x`; None if the whole image is flat."""
    top, bottom = _flat_run(x, axis=1, bright_only=bright_rows_only)
    if bottom == 0:
        return None
    left, right = _flat_run(x[top:bottom], axis=0)
    if right == 0:
        return None
    return slice(top, bottom), slice(left, right)


def _split_at_seams(x: np.ndarray) -> list[tuple[int, int]]:
    """Cut [H,W] into column ranges at panel seams at least half a panel height apart (see module doc)."""
    height, width = x.shape
    x = x[:: max(1, height // ANALYSIS_ROWS)]  # every n-th row is enough to see a seam, and faster
    block = max(2, height // 64)
    min_width = max(2 * block, height // 2)
    if width < 2 * min_width:
        return [(0, width)]
    sums = np.concatenate([np.zeros((x.shape[0], 1), np.float64), np.cumsum(x, axis=1, dtype=np.float64)], axis=1)
    cuts = np.arange(block, width - block + 1)
    left = (sums[:, cuts] - sums[:, cuts - block]) / block
    right = (sums[:, cuts + block] - sums[:, cuts]) / block
    jump = np.abs(left - right).mean(axis=0)
    threshold = max(SEAM_FACTOR * float(np.median(jump)), SEAM_MIN_LEVEL)
    seams: list[int] = []
    for i in np.argsort(-jump, kind="stable"):
        if jump[i] < threshold or len(seams) == 3:
            break
        cut = int(cuts[i])
        if min_width <= cut <= width - min_width and all(abs(cut - s) >= min_width for s in seams):
            seams.append(cut)
    edges = [0, *sorted(seams), width]
    return list(zip(edges[:-1], edges[1:]))


def _anisotropy(x: np.ndarray) -> float:
    """mean |d/dy| / mean |d/dx| after smoothing away speckle: > 1.8 for real B-scans, ~1 for fundus.

    Computed on an f x f block-mean reduction to ~`ANALYSIS_ROWS` rows (speed), smoothed with sigma H/100.
    """
    f = max(1, x.shape[0] // ANALYSIS_ROWS)
    h, w = x.shape[0] // f * f, x.shape[1] // f * f
    if f > 1 and w >= 2 * f:
        x = x[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    smooth = gaussian_filter(x, sigma=max(1.0, x.shape[0] / 100))
    dy = float(np.abs(np.diff(smooth, axis=0)).mean())
    dx = float(np.abs(np.diff(smooth, axis=1)).mean())
    return dy / max(dx, 1e-6)


def _fill_bright_padding(gray: np.ndarray) -> np.ndarray:
    """Replace flat bright border rows/columns by the image's background level (size unchanged)."""
    x = gray.astype(np.float32)
    box = _content_box(x)
    if box is None:
        return gray
    rows, cols = box
    inside = np.zeros(gray.shape, dtype=bool)
    inside[rows, cols] = True
    bright_rows = x.mean(axis=1) >= BRIGHT_PADDING
    bright_cols = x.mean(axis=0) >= BRIGHT_PADDING
    padding = ~inside & (bright_rows[:, None] | bright_cols[None, :])
    if not padding.any():
        return gray
    out = gray.copy()
    out[padding] = np.uint8(np.percentile(gray[rows, cols], 5))
    return out

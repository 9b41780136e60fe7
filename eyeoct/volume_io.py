"""Reading and writing OCT volumes in the APTOS-2024 submission layout.

A volume of case `<stem>` is the folder `<root>/<stem>/` holding `<stem>_0.<ext>` ... `<stem>_5.<ext>`,
one grayscale B-scan per file (slice k = channel k); file names and extension order are those of
`eyeoct.case_layout`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from eyeoct.case_layout import (
    NUM_SLICES,
    MissingSlicesError,
    case_prefix,
    find_slice_files,
    has_slices,
    slice_paths,
)
from eyeoct.data.errors import ImageReadError
from eyeoct.data.images import open_image


class VolumeIOError(ValueError):
    """A volume folder that does not hold six readable slices."""


def write_volume(out_dir: str | Path, stem: str, slices: np.ndarray, ext: str = "png",
                 size: tuple[int, int] | None = None, jpeg_quality: int = 95) -> list[Path]:
    """Write uint8 slices [NUM_SLICES,H,W] as `out_dir/<stem>/<stem>_{0..5}.<ext>`; `size` is (width, height)."""
    slices = np.asarray(slices)
    if slices.ndim != 3 or slices.shape[0] != NUM_SLICES or slices.dtype != np.uint8:
        raise VolumeIOError(f"volume {stem!r}: expected uint8 slices of shape [{NUM_SLICES},H,W], "
                            f"got {slices.dtype} {slices.shape}")
    case_dir = Path(out_dir) / stem
    case_dir.mkdir(parents=True, exist_ok=True)
    paths = slice_paths(case_dir, case_prefix(stem), ext)
    for path, array in zip(paths, slices):
        image = Image.fromarray(array, mode="L")
        if size is not None and image.size != tuple(size):
            image = image.resize(tuple(size), Image.Resampling.BICUBIC)
        image.save(path, quality=jpeg_quality) if path.suffix.lower() in (".jpg", ".jpeg") else image.save(path)
    return paths


def read_volume(case_dir: str | Path) -> np.ndarray:
    """Read `case_dir/<stem>_{0..5}.*` (stem = folder name) as uint8 [6,H,W] grayscale."""
    case_dir = Path(case_dir)
    stem = case_dir.name
    try:
        paths = find_slice_files(case_dir, case_prefix(stem))
    except MissingSlicesError as err:
        raise VolumeIOError(f"case {stem!r}: {err}") from err
    arrays = []
    for path in paths:
        try:
            arrays.append(np.asarray(open_image(path).convert("L")))
        except ImageReadError as err:
            raise VolumeIOError(f"cannot read slice {path}: {err}") from err
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise VolumeIOError(f"case {stem!r} in {case_dir}: slices differ in size {sorted(shapes)}")
    return np.stack(arrays)


def list_volume_cases(root: str | Path) -> list[str]:
    """Sorted stems of the case folders under `root` (folders holding a `<stem>_0.<ext>` image)."""
    root = Path(root)
    if not root.is_dir():
        raise VolumeIOError(f"volume folder not found: {root}")
    return sorted(d.name for d in root.iterdir() if d.is_dir() and has_slices(d, case_prefix(d.name)))

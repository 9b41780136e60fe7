"""Reading and writing OCT volumes in the APTOS-2024 submission layout.

A volume of case `<stem>` is the folder `<root>/<stem>/` holding `<stem>_0.<ext>` ... `<stem>_5.<ext>`,
one grayscale B-scan per file (slice k = channel k).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

NUM_SLICES = 6
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class VolumeIOError(ValueError):
    """A volume folder that does not hold six readable slices."""


def slice_paths(case_dir: Path, stem: str, ext: str) -> list[Path]:
    """The six slice file names of one case folder."""
    return [case_dir / f"{stem}_{k}.{ext.lstrip('.')}" for k in range(NUM_SLICES)]


def write_volume(out_dir: str | Path, stem: str, slices: np.ndarray, ext: str = "png",
                 size: tuple[int, int] | None = None, jpeg_quality: int = 95) -> list[Path]:
    """Write uint8 slices [6,H,W] as `out_dir/<stem>/<stem>_{0..5}.<ext>`; `size` is (width, height)."""
    slices = np.asarray(slices)
    if slices.ndim != 3 or slices.shape[0] != NUM_SLICES or slices.dtype != np.uint8:
        raise VolumeIOError(f"volume {stem!r}: expected uint8 slices of shape [6,H,W], got {slices.dtype} {slices.shape}")
    case_dir = Path(out_dir) / stem
    case_dir.mkdir(parents=True, exist_ok=True)
    paths = slice_paths(case_dir, stem, ext)
    for path, array in zip(paths, slices):
        image = Image.fromarray(array, mode="L")
        if size is not None and image.size != tuple(size):
            image = image.resize(tuple(size), Image.Resampling.BICUBIC)
        image.save(path, quality=jpeg_quality) if path.suffix.lower() in (".jpg", ".jpeg") else image.save(path)
    return paths


def _find_slice(case_dir: Path, stem: str, k: int) -> Path:
    for ext in IMAGE_EXTENSIONS:
        for candidate in (case_dir / f"{stem}_{k}{ext}", case_dir / f"{stem}_{k}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    raise VolumeIOError(f"case {stem!r}: slice {k} missing, expected {case_dir / f'{stem}_{k}'}.<png|jpg|...>")


def read_volume(case_dir: str | Path) -> np.ndarray:
    """Read `case_dir/<stem>_{0..5}.*` (stem = folder name) as uint8 [6,H,W] grayscale."""
    case_dir = Path(case_dir)
    stem = case_dir.name
    arrays = []
    for k in range(NUM_SLICES):
        path = _find_slice(case_dir, stem, k)
        try:
            with Image.open(path) as image:
                arrays.append(np.asarray(image.convert("L")))
        except OSError as err:
            raise VolumeIOError(f"cannot read slice {path}: {err}") from err
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise VolumeIOError(f"case {stem!r} in {case_dir}: slices differ in size {sorted(shapes)}")
    return np.stack(arrays)


def list_volume_cases(root: str | Path) -> list[str]:
    """Sorted stems of the case folders under `root` (folders holding a `<stem>_0.*` file)."""
    root = Path(root)
    if not root.is_dir():
        raise VolumeIOError(f"volume folder not found: {root}")
    return sorted(d.name for d in root.iterdir() if d.is_dir() and any(d.glob(f"{d.name}_0.*")))

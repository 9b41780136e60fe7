"""The on-disk layout of one eye's OCT volume: the one place that names slice files.

A volume is `NUM_SLICES` grayscale B-scans (slice k = channel k) stored as files `<prefix><k>.<ext>`
in one folder:

- the APTOS-2024 and submission layout: prefix `<id>_`, so `<id>/<id>_0.<ext> ... <id>_5.<ext>`
  (`case_prefix(id)`);
- the plain folder layout of `eyeoct.data.folder`: prefix `oct_`.

Reading: the file of slice k is the first existing `<prefix><k><ext>` for `ext` in `IMAGE_EXTENSIONS`
order, each extension tried in lower case and then upper case. So a folder holding both `a_0.png` and
`a_0.jpg` is read from `a_0.png` (the lossless copy), by training and evaluation alike.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

NUM_SLICES = 6
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")  # reading order, first existing file wins


class MissingSlicesError(ValueError):
    """A case folder without a file for every slice; `path` is the first missing file (without extension)."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


def case_id_problem(case_id: str) -> str | None:
    """Why `case_id` cannot name a folder of its own (`.`/`..`, a path separator, a control character,
    empty), or None when it can."""
    if not case_id or case_id in (".", ".."):
        return f"case id {case_id!r} is empty, '.' or '..'"
    if "/" in case_id or "\\" in case_id:
        return f"case id {case_id!r} holds a path separator"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in case_id):
        return f"case id {case_id!r} holds a control character"
    return None


def case_id_problems(ids: Sequence[tuple[str, str]]) -> dict[int, str]:
    """The problem of each entry of `ids` (`(case_id, where it came from)`) by position: an unusable id
    (`case_id_problem`), or one repeating an earlier id, also when they differ only in case (`A` and `a` collide
    on macOS and Windows file systems)."""
    problems: dict[int, str] = {}
    first: dict[str, tuple[str, str]] = {}
    for i, (case_id, source) in enumerate(ids):
        problem = case_id_problem(case_id)
        if problem is None and case_id.casefold() in first:
            earlier_id, earlier = first[case_id.casefold()]
            if earlier_id == case_id:
                problem = f"case id {case_id!r} appears twice ({earlier} and {source}): their outputs would collide"
            else:
                problem = (f"case ids {earlier_id!r} and {case_id!r} differ only in case ({earlier} and {source}): "
                           f"their folders collide on case-insensitive file systems (macOS, Windows)")
        if problem is None:
            first[case_id.casefold()] = (case_id, source)
        else:
            problems[i] = problem
    return problems


def case_prefix(case_id: str) -> str:
    """The slice-file prefix of the APTOS/submission layout: `<case_id>_`."""
    return f"{case_id}_"


def slice_paths(folder: str | Path, prefix: str, ext: str) -> list[Path]:
    """The `NUM_SLICES` file names `<folder>/<prefix>{0..5}.<ext>` a writer uses (`ext` with or without dot)."""
    return [Path(folder) / f"{prefix}{k}.{ext.lstrip('.')}" for k in range(NUM_SLICES)]


def find_image_file(stem_path: str | Path) -> Path | None:
    """The existing file `<stem_path><ext>` for the first of `IMAGE_EXTENSIONS` (lower, then upper case), or None."""
    stem_path = Path(stem_path)
    for ext in IMAGE_EXTENSIONS:
        for suffix in (ext, ext.upper()):
            candidate = stem_path.with_name(stem_path.name + suffix)
            if candidate.is_file():
                return candidate
    return None


def has_slices(folder: str | Path, prefix: str) -> bool:
    """Whether `folder` holds a file for slice 0 (how case folders are told apart from other folders)."""
    return find_image_file(Path(folder) / f"{prefix}0") is not None


def find_slice_files(folder: str | Path, prefix: str) -> list[Path]:
    """The files of slices 0..5 of `folder` (see the module docstring for the extension order).

    Raises `MissingSlicesError` naming the first missing file and every missing slice index."""
    folder = Path(folder)
    found = [find_image_file(folder / f"{prefix}{k}") for k in range(NUM_SLICES)]
    missing = [k for k, path in enumerate(found) if path is None]
    if missing:
        first = folder / f"{prefix}{missing[0]}"
        raise MissingSlicesError(
            f"found {NUM_SLICES - len(missing)} of {NUM_SLICES} OCT slices; missing slice {missing[0]}: "
            f"{first}.<ext> (missing slices {missing}; extensions tried: {', '.join(IMAGE_EXTENSIONS)})", first)
    return found  # type: ignore[return-value]

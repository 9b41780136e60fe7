"""Where an inference run writes, and the refusal to write into a folder that already holds files.

    DIR/<case>/<case>_{0..5}.<ext>                submission layout (what gets zipped)
    DIR/samples/s<j>/<case>/<case>_{0..5}.<ext>   every sample when K > 1 (each s<j> is itself a
                                                  complete submission-layout tree)
    DIR/uncertainty/<case>/<case>_{0..5}_std.png  per-pixel std across the K samples (K > 1)
    DIR/montages/<case>.png                       CF beside its six submitted slices
    DIR/index.csv, DIR/skipped.txt, DIR/submission.zip
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from eyeoct.data.errors import DataError
from eyeoct.inference.index_file import read_index_paths

logger = logging.getLogger(__name__)

INDEX_NAME = "index.csv"
SKIPPED_NAME = "skipped.txt"
ZIP_NAME = "submission.zip"
RESERVED_FOLDERS = ("samples", "uncertainty", "montages")


class OutputExistsError(FileExistsError):
    """The output folder already holds files and overwriting was not asked for."""


@dataclass(frozen=True)
class OutputLayout:
    """Paths of everything an inference run writes under `root`."""

    root: Path

    def samples_root(self, sample: int) -> Path:
        return self.root / "samples" / f"s{sample}"

    def uncertainty_path(self, case_id: str, k: int) -> Path:
        return self.root / "uncertainty" / case_id / f"{case_id}_{k}_std.png"

    def montage_path(self, case_id: str) -> Path:
        return self.root / "montages" / f"{case_id}.png"

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_NAME

    @property
    def skipped_path(self) -> Path:
        return self.root / SKIPPED_NAME

    @property
    def zip_path(self) -> Path:
        return self.root / ZIP_NAME


def check_case_ids(case_ids: list[str]) -> None:
    """Refuse case ids that would collide with the run's own folders."""
    clashes = sorted(set(case_ids) & set(RESERVED_FOLDERS))
    if clashes:
        raise DataError(f"input photo(s) named {clashes} would collide with the output folders "
                        f"{list(RESERVED_FOLDERS)}; rename them")


def _remove_previous_outputs(layout: OutputLayout) -> None:
    """Delete the files a previous run listed in its index (and its index files); other files stay."""
    listed = read_index_paths(layout.index_path) if layout.index_path.is_file() else []
    folders = set()
    for rel in [*listed, INDEX_NAME, SKIPPED_NAME, ZIP_NAME]:
        path = layout.root / rel
        if path.is_file() and layout.root.resolve() in path.resolve().parents:
            path.unlink()
            folders.update(p for p in path.parents if layout.root.resolve() in p.resolve().parents)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    logger.info("--overwrite: removed %d files of the previous run in %s", len(listed), layout.root)


def check_output_dir(root: str | Path, overwrite: bool) -> OutputLayout:
    """The layout under `root`; refuses a non-empty folder unless `overwrite` (touches nothing)."""
    layout = OutputLayout(Path(root))
    if layout.root.exists() and not layout.root.is_dir():
        raise OutputExistsError(f"output path {layout.root} exists and is not a folder")
    if layout.root.is_dir() and any(layout.root.iterdir()) and not overwrite:
        raise OutputExistsError(f"output folder {layout.root} is not empty; pass --overwrite to replace "
                                f"its previous results or choose another --out")
    return layout


def reset_output_dir(layout: OutputLayout) -> None:
    """Create the output folder, removing the files of a previous run first (see `_remove_previous_outputs`)."""
    if layout.root.is_dir() and any(layout.root.iterdir()):
        _remove_previous_outputs(layout)
    layout.root.mkdir(parents=True, exist_ok=True)

"""Where an inference run writes, and the refusal to write into a folder that already holds files.

    DIR/<case>/<case>_{0..5}.<ext>                submission layout (what gets zipped)
    DIR/samples/s<j>/<case>/<case>_{0..5}.<ext>   every sample when K > 1 (each s<j> is itself a
                                                  complete submission-layout tree)
    DIR/uncertainty/<case>/<case>_{0..5}_std.png  per-pixel std across the K samples (K > 1)
    DIR/montages/<case>.png                       CF beside its six submitted slices
    DIR/index.csv, DIR/skipped.txt, DIR/submission.zip
    DIR/.eyeoct-infer                             the marker: this folder was made by `eyeoct infer`

`--overwrite` removes only what an earlier inference run wrote: the folder must hold the marker (written into a
new or empty folder before anything else), and only the files that run's index.csv lists (plus its index,
skipped list and zip) go; a folder without the marker is refused whole, whatever its file names.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from eyeoct.data.errors import DataError
from eyeoct.inference.index_file import read_index_paths
from ldm.util.files import OutputFolderError, ensure_writable_folder

logger = logging.getLogger(__name__)

INDEX_NAME = "index.csv"
SKIPPED_NAME = "skipped.txt"
ZIP_NAME = "submission.zip"
MARKER_NAME = ".eyeoct-infer"
MARKER_TEXT = "written by eyeoct infer: --overwrite may remove the files listed in index.csv here\n"
RESERVED_FOLDERS = ("samples", "uncertainty", "montages")


class OutputExistsError(OutputFolderError, FileExistsError):
    """The output folder already holds files that this run may not replace."""


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


def _holds_marker(root: Path) -> bool:
    marker = root / MARKER_NAME
    return marker.is_file() and not marker.is_symlink() and marker.read_text() == MARKER_TEXT


def _remove_previous_outputs(layout: OutputLayout) -> None:
    """Delete the files a previous run (proved by the marker) listed in its index, and its index files; every
    other file stays."""
    root = layout.root.resolve()
    listed = read_index_paths(layout.index_path) if layout.index_path.is_file() else []
    folders = set()
    removed = 0
    for rel in [*listed, INDEX_NAME, SKIPPED_NAME, ZIP_NAME]:
        path = layout.root / rel
        if path.is_file() and not path.is_symlink() and root in path.resolve().parents:
            path.unlink()
            removed += 1
            folders.update(p for p in path.parents if root in p.resolve().parents)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    logger.info("--overwrite: removed %d files of the previous run in %s", removed, layout.root)


def check_apart(out_dir: str | Path, input_path: str | Path) -> None:
    """Refuse an output folder equal to, inside or containing the input (a file or folder)."""
    out, given = Path(out_dir).resolve(), Path(input_path).resolve()
    if out == given or given in out.parents or out in given.parents:
        raise OutputFolderError(f"--out {out_dir} and --input {input_path} overlap (the same folder, or one inside "
                                f"the other): choose an output folder apart from the inputs")


def check_output_dir(root: str | Path, overwrite: bool, input_path: str | Path | None = None) -> OutputLayout:
    """The layout under `root`, checked before any work: apart from `input_path`, writable (created if new), and
    empty unless `overwrite` and an earlier inference run's marker is there. Removes nothing."""
    layout = OutputLayout(Path(root))
    if input_path is not None:
        check_apart(layout.root, input_path)
    if layout.root.exists() and not layout.root.is_dir():
        raise OutputExistsError(f"output path {layout.root} exists and is not a folder")
    if layout.root.is_dir() and any(layout.root.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"output folder {layout.root} is not empty; pass --overwrite to replace "
                                    f"its previous results or choose another --out")
        if not _holds_marker(layout.root):
            raise OutputExistsError(f"output folder {layout.root} holds files that no eyeoct infer run wrote (no "
                                    f"{MARKER_NAME} marker): --overwrite replaces only a previous run's results; "
                                    f"choose a new or empty --out")
    ensure_writable_folder(layout.root)
    return layout


def reset_output_dir(layout: OutputLayout, case_ids: list[str]) -> None:
    """Remove the files of a previous run (see `_remove_previous_outputs`), then mark the folder as this command's;
    refuses case outputs that would land on files the previous run did not list."""
    if _holds_marker(layout.root):
        _remove_previous_outputs(layout)
    elif any(layout.root.iterdir()):
        raise OutputExistsError(f"output folder {layout.root} was changed by someone else since it was checked")
    root = layout.root
    taken = [name for name in (INDEX_NAME, SKIPPED_NAME, ZIP_NAME) if (root / name).exists()]
    taken += [str(path.relative_to(root)) for case in case_ids for path in sorted((root / case).glob(f"{case}_[0-9].*"))]
    taken += [str(path.relative_to(root)) for folder in RESERVED_FOLDERS for path in sorted((root / folder).rglob("*"))
              if path.is_file()]
    if taken:
        raise OutputExistsError(f"output folder {layout.root} holds {taken}, which its previous run did not list "
                                f"in index.csv: move them or choose another --out")
    (root / MARKER_NAME).write_text(MARKER_TEXT)

"""One eye on disk (its CF file and six OCT slice files), path checks, and the patient-level split."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from eyeoct.case_layout import MissingSlicesError, case_id_problems, find_slice_files
from eyeoct.data.errors import DataError, DataProblem



@dataclass(frozen=True)
class EyeCase:
    """Files of one eye: `pid` groups eyes of one patient; `case_id` defaults to the CF file stem."""

    pid: str
    cf_path: Path
    oct_paths: list[Path] | None
    case_id: str = ""

    def __post_init__(self) -> None:
        if not self.case_id:
            object.__setattr__(self, "case_id", Path(self.cf_path).stem)


def resolve_inside(root: Path, relative: str, where: str) -> Path:
    """`root / relative`, refusing absolute paths and paths that leave `root`; `where` names the row."""
    text = str(relative).strip()
    if not text:
        raise DataError(f"{where}: empty path", root)
    candidate = Path(text)
    if candidate.is_absolute() or text.startswith(("/", "\\")) or (len(text) > 1 and text[1] == ":"):
        raise DataError(f"{where}: absolute path {text!r} is not allowed; paths must be relative to {root}", text)
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise DataError(f"{where}: path {text!r} leaves the data root {root}", text)
    return root / candidate


def find_six_slices(folder: Path, prefix: str, where: str) -> list[Path]:
    """Paths of `<folder>/<prefix>{0..5}.<ext>` (`eyeoct.case_layout`); a DataError naming `where` and the first
    missing file."""
    if not folder.is_dir():
        raise DataError(f"{where}: OCT folder not found: {folder}", folder)
    try:
        return find_slice_files(folder, prefix)
    except MissingSlicesError as err:
        raise DataError(f"{where}: {err}", folder) from err


def drop_bad_ids(cases: Sequence[EyeCase], source: Path) -> tuple[list[EyeCase], list[DataProblem]]:
    """The cases whose ids can name their own folder and cache entry (`eyeoct.case_layout.case_id_problems`: no
    `.`/`..`, separators or control characters, no repeats, also none differing only in case; the first kept) and
    a problem for every other one."""
    bad = case_id_problems([(case.case_id, str(case.cf_path)) for case in cases])
    problems = [DataProblem(str(cases[i].cf_path), f"{source}: {problem}") for i, problem in bad.items()]
    return [case for i, case in enumerate(cases) if i not in bad], problems


CaseT = TypeVar("CaseT")


def split_by_group(
    cases: Sequence[CaseT], val_fraction: float, seed: int, group: Callable[[CaseT], str]
) -> tuple[list[CaseT], list[CaseT]]:
    """Split into (train, val) so that no group (patient) is in both; about `val_fraction` of the groups go to val."""
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {val_fraction}")
    groups = sorted({group(c) for c in cases})
    random.Random(seed).shuffle(groups)
    n_val = round(len(groups) * val_fraction)
    if val_fraction > 0 and n_val == 0 and len(groups) > 1:
        n_val = 1
    val_groups = set(groups[:n_val])
    train = [c for c in cases if group(c) not in val_groups]
    val = [c for c in cases if group(c) in val_groups]
    return train, val

"""Which CF photographs to run on: one image, a folder of images, or an APTOS-style CSV.

Each input gets a case id: the CF file stem, as in the APTOS-2024 submission layout. Case ids must be
unique, because each names an output folder (and seeds its samples).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eyeoct.case_layout import IMAGE_EXTENSIONS, case_id_problems
from eyeoct.data.aptos import load_aptos_cases
from eyeoct.data.errors import DataError


@dataclass(frozen=True)
class InferenceInput:
    """One CF photograph to translate; `case_id` names its outputs."""

    case_id: str
    path: Path


def _is_cf_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _cf_paths(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if _is_cf_file(p))
        if not files:
            raise DataError(f"input folder {path} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        return files
    if path.suffix.lower() == ".csv":
        return [case.cf_path for case in load_aptos_cases(path, require_oct=False)]
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return [path]  # a missing or unreadable file is reported when it is read
    if not path.exists():
        raise DataError(f"input not found: {path}")
    raise DataError(f"input {path} is neither an image ({', '.join(IMAGE_EXTENSIONS)}), a folder of images, "
                    f"nor a CSV with PID and CF_path columns")


def collect_inputs(path: str | Path) -> list[InferenceInput]:
    """The CF photographs named by `path` (image, folder sorted by name, or CSV in row order), unique ids."""
    files = _cf_paths(Path(path))
    problems = case_id_problems([(file.stem, str(file)) for file in files])
    if problems:
        raise DataError(f"{len(problems)} input(s) cannot name an output folder: "
                        + "; ".join(f"{files[i]}: {problem}" for i, problem in problems.items()), path)
    return [InferenceInput(case_id=file.stem, path=file) for file in files]

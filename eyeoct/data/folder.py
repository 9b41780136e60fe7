"""A plain folder layout for data that is not APTOS-2024: one folder per eye.

    <root>/<case_id>/cf.<ext>             the colour fundus photo
    <root>/<case_id>/oct_0.<ext> ... oct_5.<ext>   the six B-scans (slice k = channel k)

`<ext>` is any of `eyeoct.case_layout.IMAGE_EXTENSIONS` (png first when a slice exists in several
formats). Folder names are the case ids. Every sub-folder of `<root>` (except hidden ones) must be a
case; plain files in `<root>` are ignored. Cases without OCT (for inference) hold only `cf.<ext>`: load
them with `require_oct=False`. Images are read as in the APTOS reader: CF in any mode or bit depth,
B-scans grayscale with two-panel exports cropped. By default every eye is its own group in train/val
splits; name folders `<patient><sep><eye>` and pass `patient_separator=<sep>` to keep both eyes of a
patient on the same side.
"""
from __future__ import annotations

from pathlib import Path

from eyeoct.case_layout import find_image_file
from eyeoct.data.cases import EyeCase, drop_bad_ids, find_six_slices
from eyeoct.data.errors import DataError, DataProblem, report_problems

CF_STEM = "cf"
OCT_PREFIX = "oct_"


def load_folder_cases(root: str | Path, require_oct: bool = True, patient_separator: str | None = None) -> list[EyeCase]:
    """Cases of a folder layout (see the module docstring), with every file checked to exist.

    Broken case folders are reported together (see `eyeoct.data.errors.report_problems`)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}", root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root} holds no case folders; expected <case_id>/{CF_STEM}.<ext> and {OCT_PREFIX}0..5.<ext>",
                        root)
    cases, problems = [], []
    for folder in folders:
        where = f"case folder {folder}"
        cf_path = find_image_file(folder / CF_STEM)
        try:
            if cf_path is None:
                raise DataError(f"{where}: no {CF_STEM}.<ext> image (e.g. {folder / (CF_STEM + '.jpg')})", folder)
            oct_paths = find_six_slices(folder, OCT_PREFIX, where) if require_oct else None
        except DataError as err:
            problems.extend(DataProblem.from_error(err, folder))
            continue
        pid = folder.name.split(patient_separator)[0] if patient_separator else folder.name
        cases.append(EyeCase(pid=pid, cf_path=cf_path, oct_paths=oct_paths, case_id=folder.name))
    cases, bad_ids = drop_bad_ids(cases, root)
    report_problems(problems + bad_ids, str(root))
    return cases

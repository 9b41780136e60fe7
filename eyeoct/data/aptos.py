"""The APTOS-2024 layout: a CSV of cases with the CF photos and OCT slice folders beside it.

    <root>/train.csv                      columns PID, CF_path, OCT_path (extra columns are ignored)
    <root>/CF/<CF_path>                   e.g. CF/011574-64L.jpg
    <root>/OCT/<OCT_path>/<OCT_path>_{0..5}.jpg   (any extension of `eyeoct.case_layout`)
    <root>/val.csv                        columns PID, CF_path (no OCT: load with require_oct=False)

`<root>` is the CSV's folder unless `data_root` is given. Paths in the CSV must stay inside the root.
Every file is checked to exist when the CSV is loaded: one error lists every broken row with its PID and path.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from eyeoct.case_layout import case_prefix
from eyeoct.data.cases import EyeCase, drop_bad_ids, find_six_slices, resolve_inside
from eyeoct.data.errors import DataError, DataProblem, report_problems

AptosCase = EyeCase  # case id = CF file stem; `pid` is the CSV's PID
CF_FOLDER = "CF"
OCT_FOLDER = "OCT"


def _read_csv(csv_path: Path, required: list[str]) -> pd.DataFrame:
    if not csv_path.is_file():
        raise DataError(f"CSV file not found: {csv_path}", csv_path)
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{csv_path} is empty; expected a header with columns {', '.join(required)}", csv_path) from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"cannot parse CSV {csv_path}: {err}", csv_path) from err
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataError(
            f"{csv_path} lacks column(s) {', '.join(missing)}; expected columns {', '.join(required)}, "
            f"found {', '.join(table.columns)}", csv_path
        )
    if table.empty:
        raise DataError(f"{csv_path} has a header but no cases", csv_path)
    return table


def load_aptos_cases(csv_path: str | Path, data_root: str | Path | None = None, require_oct: bool = True) -> list[EyeCase]:
    """Cases of an APTOS-2024 CSV, with every listed file checked to exist (`oct_paths` None if not required).

    Broken rows are reported together (see `eyeoct.data.errors.report_problems`)."""
    csv_path = Path(csv_path)
    root = Path(data_root) if data_root is not None else csv_path.parent
    required = ["PID", "CF_path"] + (["OCT_path"] if require_oct else [])
    table = _read_csv(csv_path, required)
    cases, problems = [], []
    for line, row in enumerate(table.to_dict("records"), start=2):
        try:
            cases.append(_row_case(row, f"{csv_path} line {line} (PID {str(row['PID']).strip()})", root, require_oct))
        except DataError as err:
            problems.extend(DataProblem.from_error(err, csv_path))
    cases, repeated = drop_bad_ids(cases, csv_path)
    report_problems(problems + repeated, str(csv_path))
    return cases


def _row_case(row: dict, where: str, root: Path, require_oct: bool) -> EyeCase:
    cf_path = resolve_inside(root / CF_FOLDER, row["CF_path"], f"{where} CF_path")
    if not cf_path.is_file():
        raise DataError(f"{where}: CF image not found: {cf_path}", cf_path)
    oct_paths = None
    if require_oct:
        folder = resolve_inside(root / OCT_FOLDER, str(row["OCT_path"]).strip(), f"{where} OCT_path")
        oct_paths = find_six_slices(folder, case_prefix(folder.name), where)
    return EyeCase(pid=str(row["PID"]).strip(), cf_path=cf_path, oct_paths=oct_paths)

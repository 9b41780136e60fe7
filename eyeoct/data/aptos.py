"""The APTOS-2024 layout: a CSV of cases with the CF photos and OCT slice folders beside it.

    <root>/train.csv                      columns PID, CF_path, OCT_path (extra columns are ignored)
    <root>/CF/<CF_path>                   e.g. CF/011574-64L.jpg
    <root>/OCT/<OCT_path>/<OCT_path>_{0..5}.jpg
    <root>/val.csv                        columns PID, CF_path (no OCT: load with require_oct=False)

`<root>` is the CSV's folder unless `data_root` is given. Paths in the CSV must stay inside the root.
Every file is checked when the CSV is loaded, so a broken row fails at once, naming its PID and path.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from eyeoct.data.cases import EyeCase, check_unique_ids, find_six_slices, resolve_inside
from eyeoct.data.errors import DataError

AptosCase = EyeCase  # case id = CF file stem; `pid` is the CSV's PID
CF_FOLDER = "CF"
OCT_FOLDER = "OCT"


def _read_csv(csv_path: Path, required: list[str]) -> pd.DataFrame:
    if not csv_path.is_file():
        raise DataError(f"CSV file not found: {csv_path}")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{csv_path} is empty; expected a header with columns {', '.join(required)}") from err
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"cannot parse CSV {csv_path}: {err}") from err
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataError(
            f"{csv_path} lacks column(s) {', '.join(missing)}; expected columns {', '.join(required)}, "
            f"found {', '.join(table.columns)}"
        )
    if table.empty:
        raise DataError(f"{csv_path} has a header but no cases")
    return table


def load_aptos_cases(csv_path: str | Path, data_root: str | Path | None = None, require_oct: bool = True) -> list[EyeCase]:
    """Cases of an APTOS-2024 CSV, with every listed file checked to exist (`oct_paths` None if not required)."""
    csv_path = Path(csv_path)
    root = Path(data_root) if data_root is not None else csv_path.parent
    required = ["PID", "CF_path"] + (["OCT_path"] if require_oct else [])
    table = _read_csv(csv_path, required)
    cases = []
    for line, row in enumerate(table.to_dict("records"), start=2):
        pid = str(row["PID"]).strip()
        where = f"{csv_path} line {line} (PID {pid})"
        cf_path = resolve_inside(root / CF_FOLDER, row["CF_path"], f"{where} CF_path")
        if not cf_path.is_file():
            raise DataError(f"{where}: CF image not found: {cf_path}")
        oct_paths = None
        if require_oct:
            oct_name = str(row["OCT_path"]).strip()
            folder = resolve_inside(root / OCT_FOLDER, oct_name, f"{where} OCT_path")
            oct_paths = find_six_slices(folder, f"{folder.name}_", where)
        cases.append(EyeCase(pid=pid, cf_path=cf_path, oct_paths=oct_paths))
    check_unique_ids(cases, csv_path)
    return cases

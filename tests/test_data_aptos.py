"""APTOS-2024 CSV reading: the layout, the patient-level split, and every kind of bad input."""
import shutil

import numpy as np
import pytest

from data_synthetic import write_aptos_layout
from eyeoct.data.aptos import load_aptos_cases
from eyeoct.data.cases import split_by_group
from eyeoct.data.errors import DataError


@pytest.fixture
def layout(tmp_path):
    return write_aptos_layout(tmp_path / "train", patients=3)


def test_load_cases_lists_files_and_ids(layout):
    cases = load_aptos_cases(layout)
    assert [c.case_id for c in cases] == ["000000-60L", "000000-60R", "000001-61L", "000001-61R", "000002-62L", "000002-62R"]
    assert [c.pid for c in cases] == ["000000", "000000", "000001", "000001", "000002", "000002"]
    assert cases[3].cf_path == layout.parent / "CF" / "000001-61R.png"
    assert cases[3].oct_paths == [layout.parent / "OCT" / "000001_R" / f"000001_R_{k}.png" for k in range(6)]


def test_val_csv_without_oct(layout):
    val = layout.parent / "val.csv"
    val.write_text("PID,CF_path\n000002,000002-62L.png\n")
    with pytest.raises(DataError, match="OCT_path"):
        load_aptos_cases(val)
    cases = load_aptos_cases(val, require_oct=False)
    assert len(cases) == 1 and cases[0].oct_paths is None and cases[0].case_id == "000002-62L"


def test_bom_extra_columns_and_explicit_root(layout, tmp_path):
    text = layout.read_text().splitlines()
    rows = [text[0] + ",Age"] + [line + ",70" for line in text[1:]]
    other = tmp_path / "elsewhere.csv"
    other.write_bytes("\n".join(rows).encode("utf-8-sig"))
    cases = load_aptos_cases(other, data_root=layout.parent)
    assert len(cases) == 6 and cases[0].pid == "000000"


def test_missing_column_lists_expected(layout):
    layout.write_text("PID,CF\n1,a.png\n")
    with pytest.raises(DataError, match="expected columns PID, CF_path, OCT_path") as info:
        load_aptos_cases(layout)
    assert "CF_path" in str(info.value).split("lacks column(s)")[1]


def test_missing_cf_and_missing_slice_name_pid_and_path(layout):
    (layout.parent / "CF" / "000001-61L.png").unlink()
    with pytest.raises(DataError, match=r"PID 000001.*CF image not found: .*000001-61L\.png"):
        load_aptos_cases(layout)
    write_aptos_layout(layout.parent, patients=3)
    (layout.parent / "OCT" / "000002_R" / "000002_R_5.png").unlink()
    with pytest.raises(DataError, match=r"PID 000002.*found 5 of 6 OCT slices; missing .*000002_R_5"):
        load_aptos_cases(layout)
    shutil.rmtree(layout.parent / "OCT" / "000002_R")
    with pytest.raises(DataError, match=r"PID 000002.*OCT folder not found: .*000002_R"):
        load_aptos_cases(layout)


@pytest.mark.parametrize("bad", ["../secret.png", "/etc/passwd", "sub/../../x.png"])
def test_paths_escaping_the_root_are_rejected(layout, bad):
    layout.write_text(f"PID,CF_path,OCT_path\n000007,{bad},000000_L\n")
    with pytest.raises(DataError, match=r"line 2 \(PID 000007\) CF_path"):
        load_aptos_cases(layout)


def test_oct_path_escaping_the_root_is_rejected(layout):
    layout.write_text("PID,CF_path,OCT_path\n000003,000000-60L.png,../../OCT\n")
    with pytest.raises(DataError, match=r"PID 000003\) OCT_path: path '../../OCT' leaves"):
        load_aptos_cases(layout)


def test_empty_csv_and_header_only(layout):
    layout.write_text("")
    with pytest.raises(DataError, match="is empty"):
        load_aptos_cases(layout)
    layout.write_text("PID,CF_path,OCT_path\n")
    with pytest.raises(DataError, match="no cases"):
        load_aptos_cases(layout)


def test_duplicate_case_ids_rejected(layout):
    lines = layout.read_text().splitlines()
    layout.write_text("\n".join(lines + [lines[1]]) + "\n")
    with pytest.raises(DataError, match="case id '000000-60L' appears twice"):
        load_aptos_cases(layout)


def test_patient_split_is_disjoint_and_seeded():
    cases = [(f"p{p}", eye) for p in range(40) for eye in "LR"]
    train, val = split_by_group(cases, val_fraction=0.25, seed=3, group=lambda c: c[0])
    assert len(train) + len(val) == 80
    assert len({c[0] for c in val}) == 10
    assert not {c[0] for c in train} & {c[0] for c in val}
    assert split_by_group(cases, 0.25, 3, lambda c: c[0]) == (train, val)
    assert split_by_group(cases, 0.25, 4, lambda c: c[0])[1] != val
    assert np.all([sum(c[0] == p for c in val) == 2 for p in {c[0] for c in val}])

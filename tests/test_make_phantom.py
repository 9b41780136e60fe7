"""Tests of the phantom dataset writer (scripts/make_phantom.py and eyeoct.data.phantom.export)."""
import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eyeoct.data.aptos import load_aptos_cases
from eyeoct.data.folder import load_folder_cases
from eyeoct.data.images import read_oct_slice
from eyeoct.data.phantom import PhantomConfig, render_case
from eyeoct.data.phantom.export import write_phantom_dataset
from script_helpers import script_main


def _csv_rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def _meta_records(root: Path) -> dict[str, dict]:
    return {r["name"]: r for r in map(json.loads, (root / "phantom_meta.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def aptos_phantom(tmp_path_factory):
    """`(out folder, counts)` of make_phantom.py writing 7 eyes in the APTOS layout (5 train, 2 of them two-panel)."""
    out = tmp_path_factory.mktemp("phantom") / "phantom"
    counts = script_main("make_phantom")(["--out", str(out), "--n", "7", "--seed", "3", "--cf-size", "48",
                                          "--oct-size", "40x64", "--val-fraction", "0.3",
                                          "--two-panel-fraction", "0.4"])
    return out, counts


def test_script_writes_the_aptos_layout(aptos_phantom):
    out, counts = aptos_phantom
    assert counts == {"train": 5, "val": 2, "two_panel": 2}
    header, train = _csv_rows(out / "train" / "train.csv")
    assert header == ["PID", "CF_path", "OCT_path"] and len(train) == 5
    header, val = _csv_rows(out / "val" / "val.csv")
    assert header == ["PID", "CF_path"] and len(val) == 2
    assert not (out / "val" / "OCT").exists()
    records = _meta_records(out)
    widths = []
    for row in train + val:
        stem = row["CF_path"][:-4]
        assert re.fullmatch(r"\d{6}-\d+[LR]\.jpg", row["CF_path"]) and row["CF_path"].startswith(row["PID"] + "-")
        assert stem[-1] == records[stem]["meta"]["laterality"]
        split = records[stem]["split"]
        with Image.open(out / split / "CF" / row["CF_path"]) as im:
            assert im.size == (48, 48) and im.mode == "RGB"
    for row in train:
        files = sorted((out / "train" / "OCT" / row["OCT_path"]).iterdir())
        assert [f.name for f in files] == [f"{row['OCT_path']}_{k}.jpg" for k in range(6)]
        sizes = {Image.open(f).size for f in files}
        assert len(sizes) == 1
        widths.append(sizes.pop())
        assert records[row["CF_path"][:-4]]["two_panel"] == (widths[-1] == (128, 40))
    assert sorted(widths) == [(64, 40)] * 3 + [(128, 40)] * 2


def test_the_readers_accept_the_written_aptos_layout(aptos_phantom):
    out, _ = aptos_phantom
    _, train = _csv_rows(out / "train" / "train.csv")
    cases = load_aptos_cases(out / "train" / "train.csv")
    assert [c.case_id for c in cases] == [r["CF_path"][:-4] for r in train]
    assert len(load_aptos_cases(out / "val" / "val.csv", require_oct=False)) == 2


def test_full_size_two_panel_export_holds_the_bscan_on_the_right(tmp_path):
    out = tmp_path / "full"
    config = PhantomConfig(cf_size=64)
    write_phantom_dataset(out, 2, "aptos", seed=1, config=config, val_fraction=0.0, two_panel_fraction=0.5)
    records = _meta_records(out)
    (name, record), = [(k, r) for k, r in records.items() if r["two_panel"]]
    index = record["meta"]["index"]
    oct_name = name.replace("-", "_")
    path = out / "train" / "OCT" / oct_name / f"{oct_name}_2.jpg"
    image = np.asarray(Image.open(path).convert("L")).astype(np.float64)
    assert image.shape == (496, 1536)
    truth = render_case(1, index, config).oct[2].astype(np.float64)
    assert np.abs(image[:, 768:] - truth).mean() < 4.0      # JPEG of the B-scan itself
    assert np.abs(image[:, :768] - truth).mean() > 30.0     # the left panel is the infrared fundus
    cropped = read_oct_slice(path).astype(np.float64)
    assert cropped.shape == (496, 768) and np.abs(cropped - truth).mean() < 4.0


def test_folder_layout(tmp_path):
    out = tmp_path / "folder"
    config = PhantomConfig(cf_size=40, oct_height=32, oct_width=48)
    counts = write_phantom_dataset(out, 3, "folder", seed=2, config=config, two_panel_fraction=0.0)
    assert counts == {"train": 3, "val": 0, "two_panel": 0}
    cases = load_folder_cases(out)
    assert len(cases) == 3
    for case in cases:
        assert case.cf_path.name == "cf.jpg"
        assert [p.name for p in case.oct_paths] == [f"oct_{k}.png" for k in range(6)]
        index = _meta_records(out)[case.case_id]["meta"]["index"]
        np.testing.assert_array_equal(np.asarray(Image.open(case.oct_paths[4])), render_case(2, index, config).oct[4])


def test_refuses_a_non_empty_output_folder(tmp_path):
    (tmp_path / "old.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="non-empty folder"):
        write_phantom_dataset(tmp_path, 2, config=PhantomConfig(cf_size=32, oct_height=32, oct_width=32))
    with pytest.raises(SystemExit) as info:
        script_main("make_phantom")(["--out", str(tmp_path), "--n", "2", "--cf-size", "32", "--oct-size", "32x32"])
    assert info.value.code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.txt"]


def test_refuses_an_unknown_layout(tmp_path):
    with pytest.raises(ValueError, match="layout"):
        write_phantom_dataset(tmp_path / "new", 2, layout="zip")

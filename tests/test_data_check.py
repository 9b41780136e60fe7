"""The data check (scripts/prepare_data.py and the training commands' start-up check): every bad input in
one list, the disk cache filled, a warm cache read without decoding, and the rank and config switches."""
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

import eyeoct.data.datasets as datasets
from data_synthetic import bscan_panel, colour_fundus, save, write_aptos_layout
from eyeoct.commands import prepare_data, train_ae
from eyeoct.commands import train_common
from eyeoct.config import load_config
from eyeoct.data.aptos import load_aptos_cases
from eyeoct.data.check import DataCheckReport, check_data
from eyeoct.data.errors import DataProblems
from eyeoct.data.folder import load_folder_cases
from eyeoct.runs import RUN_DIR_ENV


def data_block(csv: Path, cache: Path, num_workers: int = 0) -> dict:
    """APTOS train/val (patient-level split of one CSV) with a disk cache, as in configs/data/aptos.yaml."""
    return {"target": "eyeoct.data.datamodule.EyeOCTDataModule",
            "params": {"batch_size": 2, "num_workers": num_workers,
                       "dataset_defaults": {"csv_path": str(csv), "cf_size": 16, "oct_size": [16, 24],
                                            "val_fraction": 0.25, "split_seed": 0, "cache_dir": str(cache)},
                       "train": {"target": "eyeoct.data.datasets.AptosDataset", "params": {"split": "train"}},
                       "val": {"target": "eyeoct.data.datasets.AptosDataset", "params": {"split": "val"}}}}


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump({"data": data}))
    return path


@pytest.fixture
def bad_layout(tmp_path):
    """8 eyes of 4 patients (JPEG) with five unusable files in four eyes; returns (csv, {file: reason word})."""
    csv = write_aptos_layout(tmp_path / "aptos", patients=4, ext="jpg")
    root = csv.parent
    truncated = root / "OCT" / "000000_L" / "000000_L_2.jpg"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    empty = root / "OCT" / "000001_R" / "000001_R_0.jpg"
    empty.write_bytes(b"")
    (root / "OCT" / "000002_L" / "000002_L_5.jpg").unlink()  # five slices instead of six
    not_an_image = root / "CF" / "000003-63R.jpg"
    not_an_image.write_text("this is not a photograph")
    second_in_case = root / "CF" / "000000-60L.jpg"  # the eye with the truncated slice has a bad CF too
    second_in_case.write_bytes(second_in_case.read_bytes()[:100])
    expected = {str(truncated): "truncated", str(empty): "the file is empty (0 bytes)", str(root / "OCT" / "000002_L"): "found 5 of 6",
                str(not_an_image): "cannot identify", str(second_in_case): "cannot decode"}
    return csv, expected


def test_every_bad_file_is_listed_once_with_its_reason(bad_layout, tmp_path):
    csv, expected = bad_layout
    report = check_data(OmegaConf.create(data_block(csv, tmp_path / "cache")))
    assert {p.path: p.reason for p in report.problems}.keys() == expected.keys()
    for problem in report.problems:
        assert expected[problem.path] in problem.reason, problem
    assert len(report.problems) == 5  # train and val read the same CSV; its broken row is listed once
    assert sum(report.cases.values()) == 7  # the eye with five slices is no case; the other seven were read
    # the four eyes without problems were cached; nothing was stored for the broken ones
    assert len(list(Path(report.cache_folders[0]).glob("*.npz"))) == 4


def test_prepare_data_exits_non_zero_listing_all_problems(bad_layout, tmp_path, capsys):
    csv, expected = bad_layout
    config = write_config(tmp_path / "data.yaml", data_block(csv, tmp_path / "cache"))
    with pytest.raises(SystemExit) as info:
        prepare_data.main(["--config", str(config), "--log-level", "WARNING"])
    message = str(info.value.code)
    assert message.startswith("prepare_data: error: 5 unusable input(s) in the data of")
    assert all(path in message for path in expected)
    assert "checked train 6, val 1 case(s)" in capsys.readouterr().out


def test_training_stops_before_creating_a_run_folder(bad_layout, tmp_path, repo_root):
    csv, expected = bad_layout
    cfg = load_config([repo_root / "configs" / "ae" / "tiny_test.yaml"])
    cfg.data = data_block(csv, tmp_path / "cache")
    config = tmp_path / "ae.yaml"
    config.write_text(OmegaConf.to_yaml(cfg))
    with pytest.raises(SystemExit) as info:
        train_ae.main(["--config", str(config), f"run.root={tmp_path / 'runs'}", "--log-level", "WARNING"])
    assert all(path in str(info.value.code) for path in expected)
    assert "Nothing was trained" in str(info.value.code)
    assert not (tmp_path / "runs").exists()


def test_check_with_loader_workers_finds_the_same(bad_layout, tmp_path):
    csv, expected = bad_layout
    report = check_data(OmegaConf.create(data_block(csv, tmp_path / "cache", num_workers=2)))
    assert sorted(p.path for p in report.problems) == sorted(expected)


def test_warm_cache_is_checked_without_decoding(tmp_path, monkeypatch):
    csv = write_aptos_layout(tmp_path / "aptos", patients=2, ext="png")
    calls = {"cf": 0, "oct": 0}

    def counting(reader, key):
        def read(path):
            calls[key] += 1
            return reader(path)
        return read

    monkeypatch.setattr(datasets, "read_rgb", counting(datasets.read_rgb, "cf"))
    monkeypatch.setattr(datasets, "read_oct_slice", counting(datasets.read_oct_slice, "oct"))
    block = OmegaConf.create(data_block(csv, tmp_path / "cache"))
    cold = check_data(block)
    assert cold.problems == [] and calls == {"cf": 4, "oct": 24}
    warm = check_data(block)
    assert warm.problems == [] and warm.cases == cold.cases and calls == {"cf": 4, "oct": 24}
    # an edited image is decoded again (and only that case)
    (csv.parent / "CF" / "000001-61L.png").touch()
    check_data(block)
    assert calls == {"cf": 5, "oct": 30}


def test_csv_rows_are_all_reported_together(tmp_path):
    csv = write_aptos_layout(tmp_path / "aptos", patients=3)
    (csv.parent / "CF" / "000000-60R.png").unlink()
    (csv.parent / "OCT" / "000002_L" / "000002_L_3.png").unlink()
    with pytest.raises(DataProblems) as info:
        load_aptos_cases(csv)
    assert [p.path for p in info.value.problems] == [str(csv.parent / "CF" / "000000-60R.png"),
                                                     str(csv.parent / "OCT" / "000002_L")]
    assert "line 3 (PID 000000)" in str(info.value) and "line 6 (PID 000002)" in str(info.value)


@pytest.mark.parametrize("rank, launched_by_rank0, switch, checked", [
    ("0", False, None, True),     # rank 0 (or a single process) checks
    ("1", True, None, False),     # a worker Lightning started after rank 0 checked
    ("1", False, None, True),     # a rank started by torchrun/SLURM checks by itself
    ("0", False, False, False),   # data.check_on_start: false
])
def test_who_checks_at_start(monkeypatch, tmp_path, rank, launched_by_rank0, switch, checked):
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", RUN_DIR_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RANK", rank)
    if launched_by_rank0:
        monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path))
    seen = []

    def fake_check(block):
        seen.append(block)
        return DataCheckReport()

    monkeypatch.setattr(train_common, "check_data", fake_check)
    cfg = OmegaConf.create({"data": {"target": "x"} if switch is None else {"target": "x", "check_on_start": switch}})
    train_common.check_data_before_training(cfg)
    assert bool(seen) == checked


def test_folder_layout_lists_every_broken_case_folder(tmp_path):
    for name, slices, with_cf in (("a", 6, True), ("b", 5, True), ("c", 6, False), ("d", 6, True)):
        if with_cf:
            save(colour_fundus(24, 0), tmp_path / name / "cf.png")
        for k in range(slices):
            save(bscan_panel(16, 24, k), tmp_path / name / f"oct_{k}.png")
    with pytest.raises(DataProblems) as info:
        load_folder_cases(tmp_path)
    assert [p.path for p in info.value.problems] == [str(tmp_path / "b"), str(tmp_path / "c")]
    assert "found 5 of 6 OCT slices" in info.value.problems[0].reason
    assert "no cf.<ext> image" in info.value.problems[1].reason

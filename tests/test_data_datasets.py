"""Datasets: the sample dict contract, phantom determinism, APTOS and folder reading, and bad input at read time."""
import numpy as np
import pytest
import torch

from data_synthetic import bscan_truth, colour_fundus, save, write_aptos_layout
from eyeoct.data.datasets import AptosDataset, FolderDataset, PhantomDataset
from eyeoct.data.errors import DataError, ImageReadError
from eyeoct.data.phantom import PhantomConfig, render_case
from eyeoct.data.transforms import preprocess_cf

TINY = {"cf_size": 32, "oct_height": 32, "oct_width": 40}


def test_phantom_samples_follow_the_contract_and_are_deterministic():
    data = PhantomDataset(seed=3, start=5, num_cases=2, phantom=TINY)
    again = PhantomDataset(seed=3, start=5, num_cases=2, phantom=TINY, cache_in_memory=False)
    sample = data[1]
    assert sample["cf"].shape == (3, 32, 32) and sample["oct"].shape == (6, 32, 40)
    assert sample["cf"].dtype == sample["oct"].dtype == torch.float32
    assert sample["id"] == "phantom-3-000006" and sample["cf_path"] == ""
    for key in ("cf", "oct"):
        assert -1.0 <= sample[key].min() and sample[key].max() <= 1.0
        assert torch.equal(sample[key], again[1][key])
    case = render_case(3, 6, PhantomConfig(**TINY))
    assert torch.equal(sample["oct"], torch.from_numpy(case.oct).float() / 127.5 - 1)
    assert torch.equal(sample["cf"], torch.from_numpy(case.cf).permute(2, 0, 1).float() / 127.5 - 1)
    assert not torch.equal(data[0]["oct"], sample["oct"])
    with pytest.raises(IndexError):
        data[2]


def test_aptos_dataset_shapes_and_bscan_panel(tmp_path):
    csv = write_aptos_layout(tmp_path, patients=2, oct_hw=(32, 48))
    data = AptosDataset(csv, cf_size=24, oct_size=(32, 48))
    assert len(data) == 4
    sample = data[2]
    assert sample["id"] == "000001-61L" and sample["cf_path"].endswith("CF/000001-61L.png")
    assert sample["cf"].shape == (3, 24, 24) and sample["oct"].shape == (6, 32, 48)
    expected = bscan_truth(tmp_path, csv, (32, 48))["000001-61L"]
    assert torch.equal(sample["oct"], torch.from_numpy(expected).float() / 127.5 - 1)
    resized = AptosDataset(csv, cf_size=16, oct_size=(16, 20))[0]
    assert resized["oct"].shape == (6, 16, 20) and resized["oct"].min() >= -1 and resized["oct"].max() <= 1


def test_cf_is_centre_cropped_then_resized(tmp_path):
    photo = colour_fundus(40, seed=1)  # 40 x 50
    assert np.array_equal(preprocess_cf(photo, 40), photo[:, 5:45])
    assert preprocess_cf(photo, 20).shape == (20, 20, 3)


def test_val_csv_gives_samples_without_oct(tmp_path):
    write_aptos_layout(tmp_path, patients=1)
    (tmp_path / "val.csv").write_text("PID,CF_path\n000000,000000-60R.png\n")
    sample = AptosDataset(tmp_path / "val.csv", require_oct=False, cf_size=16)[0]
    assert "oct" not in sample and sample["cf"].shape == (3, 16, 16)


def test_train_and_val_splits_share_no_patient(tmp_path):
    csv = write_aptos_layout(tmp_path, patients=6, cf_size=16, oct_hw=(16, 24))
    kwargs = dict(val_fraction=0.34, split_seed=1, cf_size=16, oct_size=(16, 24))
    train, val = AptosDataset(csv, split="train", **kwargs), AptosDataset(csv, split="val", **kwargs)
    assert (len(train), len(val)) == (8, 4)
    train_pids, val_pids = {c.pid for c in train.cases}, {c.pid for c in val.cases}
    assert not train_pids & val_pids and len(train_pids | val_pids) == 6
    with pytest.raises(DataError, match="split must be one of"):
        AptosDataset(csv, split="test")


@pytest.mark.parametrize("kind", ["grayscale", "rgba", "16bit"])
def test_unusual_cf_modes_are_converted(tmp_path, kind):
    csv = write_aptos_layout(tmp_path, patients=1, eyes=("L",))
    rgb = colour_fundus(40, seed=0)
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[:, : rgb.shape[1] // 2] = 255  # the right half transparent: composited on black
    arrays = {"grayscale": rgb[..., 1], "rgba": np.dstack([rgb, alpha]),
              "16bit": rgb[..., 1].astype(np.uint16) * 257}
    save(arrays[kind], tmp_path / "CF" / "000000-60L.png")
    cf = AptosDataset(csv, cf_size=40)[0]["cf"]
    reference = rgb * (alpha[..., None] // 255) if kind == "rgba" else np.repeat(rgb[..., 1:2], 3, axis=2)
    assert torch.equal(cf, torch.from_numpy(reference[:, 5:45]).permute(2, 0, 1).float() / 127.5 - 1)


def test_corrupt_slice_raises_naming_the_file(tmp_path):
    csv = write_aptos_layout(tmp_path, patients=1, eyes=("R",))
    (tmp_path / "OCT" / "000000_R" / "000000_R_3.png").write_bytes(b"\x89PNG broken")
    data = AptosDataset(csv, cf_size=16, oct_size=(16, 16))
    with pytest.raises(ImageReadError, match=r"000000_R_3\.png"):
        data[0]


def _write_folder_case(root, name, with_oct=True, slices=6):
    save(colour_fundus(20, seed=len(name)), root / name / "cf.jpg")
    if with_oct:
        for k in range(slices):
            save(np.full((16, 24), 40 * k, np.uint8), root / name / f"oct_{k}.png")


def test_folder_dataset_reads_cases_and_rejects_incomplete_ones(tmp_path):
    for name in ("p1_L", "p1_R", "p2_L"):
        _write_folder_case(tmp_path, name)
    (tmp_path / "README.txt").write_text("ignored")
    data = FolderDataset(tmp_path, cf_size=16, oct_size=(16, 24))
    assert [data.case_id(i) for i in range(3)] == ["p1_L", "p1_R", "p2_L"]
    sample = data[1]
    assert sample["id"] == "p1_R" and sample["cf"].shape == (3, 16, 16)
    assert torch.equal(sample["oct"][:, 0, 0], torch.tensor([40.0 * k for k in range(6)]) / 127.5 - 1)
    grouped = FolderDataset(tmp_path, patient_separator="_", split="val", val_fraction=0.5, split_seed=0, cf_size=16)
    (pid,) = {c.pid for c in grouped.cases}
    assert [c.case_id for c in grouped.cases] == [n for n in ("p1_L", "p1_R", "p2_L") if n.startswith(pid + "_")]
    _write_folder_case(tmp_path, "p3_L", slices=5)
    with pytest.raises(DataError, match=r"p3_L: found 5 of 6 OCT slices; missing .*oct_5"):
        FolderDataset(tmp_path)
    assert len(FolderDataset(tmp_path, require_oct=False, cf_size=16)) == 4
    (tmp_path / "p4").mkdir()
    with pytest.raises(DataError, match=r"p4: no cf\.<ext> image"):
        FolderDataset(tmp_path, require_oct=False)

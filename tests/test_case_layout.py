"""The one on-disk case layout: training and evaluation readers pick the same slice files, in the documented
extension order, and a missing slice is an error that names the file."""
import re

import numpy as np
import pytest

from data_synthetic import save, write_aptos_layout
from eyeoct.case_layout import (IMAGE_EXTENSIONS, NUM_SLICES, MissingSlicesError, case_prefix, find_slice_files,
                                slice_paths)
from eyeoct.data.aptos import load_aptos_cases
from eyeoct.data.cases import find_six_slices
from eyeoct.data.datasets import AptosDataset
from eyeoct.data.errors import DataError
from eyeoct.data.folder import load_folder_cases
from eyeoct.eval.cases import GroundTruth
from eyeoct.volume_io import VolumeIOError, read_volume

HW = (16, 24)


def mixed_volume_folder(folder, prefix):
    """Slices 0..5 as png (grey 40k) and slices 0..2 also as jpg (grey 200): a folder holding both formats."""
    for k in range(NUM_SLICES):
        save(np.full(HW, 40 * k, np.uint8), folder / f"{prefix}{k}.png")
    for k in range(3):
        save(np.full(HW, 200, np.uint8), folder / f"{prefix}{k}.jpg", quality=100)


def test_documented_extension_order_starts_with_png_then_jpg():
    assert IMAGE_EXTENSIONS[:2] == (".png", ".jpg")
    assert [p.name for p in slice_paths("x", case_prefix("a"), "jpg")] == [f"a_{k}.jpg" for k in range(6)]


def test_training_and_evaluation_read_the_same_files_of_a_mixed_folder(tmp_path):
    csv = write_aptos_layout(tmp_path / "train", patients=1, eyes=("L",), two_panel=False)
    case = load_aptos_cases(csv)[0]
    folder = case.oct_paths[0].parent
    mixed_volume_folder(folder, case_prefix(folder.name))
    expected = [folder / f"{folder.name}_{k}.png" for k in range(6)]

    training_files = load_aptos_cases(csv)[0].oct_paths
    evaluation_files = find_slice_files(folder, case_prefix(folder.name))
    assert training_files == evaluation_files == expected

    wanted = np.stack([np.full(HW, 40 * k, np.uint8) for k in range(6)])
    np.testing.assert_array_equal(read_volume(folder), wanted)  # evaluation: a prediction / GT folder
    np.testing.assert_array_equal(GroundTruth.from_path(csv).load(case.case_id), wanted)  # evaluation: APTOS CSV
    trained_on = AptosDataset(csv, cf_size=16, oct_size=HW).arrays(0)["oct"]  # training
    np.testing.assert_array_equal(trained_on, wanted)


def test_folder_layout_prefers_png_too(tmp_path):
    case_dir = tmp_path / "eyes" / "e1"
    save(np.zeros((20, 20, 3), np.uint8), case_dir / "cf.jpg")
    mixed_volume_folder(case_dir, "oct_")
    [case] = load_folder_cases(tmp_path / "eyes")
    assert case.oct_paths == [case_dir / f"oct_{k}.png" for k in range(6)]


def test_missing_slice_errors_name_the_file(tmp_path):
    folder = tmp_path / "a"
    for k in (0, 1, 2, 4, 5):
        save(np.zeros(HW, np.uint8), folder / f"a_{k}.jpg")
    with pytest.raises(MissingSlicesError) as info:
        find_slice_files(folder, "a_")
    assert info.value.path == folder / "a_3"
    assert f"missing slice 3: {folder / 'a_3'}.<ext>" in str(info.value)
    message = re.escape(f"found 5 of 6 OCT slices; missing slice 3: {folder / 'a_3'}.<ext>")
    with pytest.raises(VolumeIOError, match=message):
        read_volume(folder)
    with pytest.raises(DataError, match="where: " + message):
        find_six_slices(folder, "a_", "where")

"""Submission-layout volume folders: write, read back, list, and errors."""
import numpy as np
import pytest

from eyeoct.volume_io import VolumeIOError, list_volume_cases, read_volume, write_volume


def test_png_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 256, size=(6, 13, 17), dtype=np.uint8)
    paths = write_volume(tmp_path, "011574-64L", volume)
    assert [p.name for p in paths] == [f"011574-64L_{k}.png" for k in range(6)]
    np.testing.assert_array_equal(read_volume(tmp_path / "011574-64L"), volume)
    assert list_volume_cases(tmp_path) == ["011574-64L"]


def test_resize_to_submission_size(tmp_path):
    volume = np.full((6, 32, 40), 128, dtype=np.uint8)
    write_volume(tmp_path, "a", volume, ext="jpg", size=(448, 320))
    back = read_volume(tmp_path / "a")
    assert back.shape == (6, 320, 448)
    assert abs(int(back.mean()) - 128) <= 1


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(VolumeIOError, match=r"\[6,H,W\]"):
        write_volume(tmp_path, "bad", np.zeros((5, 4, 4), dtype=np.uint8))
    write_volume(tmp_path, "c", np.zeros((6, 4, 4), dtype=np.uint8))
    (tmp_path / "c" / "c_3.png").unlink()
    with pytest.raises(VolumeIOError, match="slice 3"):
        read_volume(tmp_path / "c")

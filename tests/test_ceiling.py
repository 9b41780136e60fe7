"""The phantom's CF-information ceiling (eyeoct.baselines.ceiling) against hand computations."""
import json

import numpy as np
import pytest

from eyeoct.baselines.ceiling import ceiling_volumes, nearest_by_facts, same_kind, write_ceiling
from eyeoct.data.datasets import PhantomDataset
from eyeoct.data.phantom import PhantomConfig, eye_facts, render_case
from eyeoct.volume_io import read_volume

TINY = dict(cf_size=32, oct_height=32, oct_width=32)


def _facts(laterality, pathology, myopia):
    return {"laterality": laterality, "pathology": pathology, "myopia": myopia}


def test_nearest_eyes_of_the_same_kind_by_axial_length():
    train = [_facts("L", "normal", 0.1), _facts("R", "normal", 0.5), _facts("L", "normal", 0.45),
             _facts("L", "drusen", 0.5), _facts("L", "normal", 0.9), _facts("L", "normal", 0.55)]
    query = _facts("L", "normal", 0.5)
    assert same_kind(query, train) == [0, 2, 4, 5]
    assert nearest_by_facts(query, train, 2) == [2, 5]  # |0.45-0.5| = |0.55-0.5|: the lower index first
    assert nearest_by_facts(query, train, 10) == [2, 5, 0, 4]
    volumes = np.arange(6, dtype=np.float64)[:, None, None, None] * np.ones((6, 6, 2, 3))
    predicted = ceiling_volumes(volumes, train, [query, _facts("R", "diabetic", 0.2)], k=2)
    np.testing.assert_array_equal(predicted[0], np.full((6, 2, 3), (2 + 5) / 2))
    np.testing.assert_array_equal(predicted[1], np.full((6, 2, 3), volumes.mean()))  # no such eye: all eyes
    np.testing.assert_array_equal(ceiling_volumes(volumes, train, [query], k=None)[0],
                                  np.full((6, 2, 3), (0 + 2 + 4 + 5) / 4))


def test_eye_facts_are_the_rendered_eyes_metadata():
    config = PhantomConfig(**TINY)
    for index in (0, 7, 20001):
        meta = render_case(0, index, config).meta
        assert eye_facts(0, index, config) == {k: meta[k] for k in ("laterality", "pathology", "myopia")}


def test_write_ceiling_writes_the_rounded_mean_of_the_nearest_training_volumes(tmp_path):
    train = PhantomDataset(seed=0, start=0, num_cases=12, phantom=TINY)
    heldout = PhantomDataset(seed=0, start=500, num_cases=3, phantom=TINY)
    out = write_ceiling(train, [heldout], tmp_path / "ceiling", k=3)
    config = PhantomConfig(**TINY)
    train_facts = [eye_facts(0, i, config) for i in range(12)]
    train_octs = np.stack([render_case(0, i, config).oct for i in range(12)]).astype(np.float64)
    for index in range(3):
        chosen = nearest_by_facts(eye_facts(0, 500 + index, config), train_facts, 3) or list(range(12))
        expected = np.rint(train_octs[chosen].mean(axis=0)).astype(np.uint8)
        np.testing.assert_array_equal(read_volume(out / heldout.case_id(index)), expected)
    record = json.loads((out / "baseline.json").read_text())
    assert record["method"] == "ceiling" and record["k"] == 3 and record["heldout_cases"] == 3
    with pytest.raises(FileExistsError):
        write_ceiling(train, [heldout], out, k=3)

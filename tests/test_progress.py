"""Progress bars: counts and ETA on a terminal, silent off a terminal or when quiet (inference, baselines,
phantom export)."""
import io
import sys
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from eyeoct.baselines import BaselineSettings, run_baselines
from eyeoct.data.datasets import PhantomDataset
from eyeoct.data.phantom.export import write_phantom_dataset
from eyeoct.data.phantom import PhantomConfig
from eyeoct.inference.inputs import collect_inputs
from eyeoct.inference.runner import InferenceOptions, cf_preparer, run_inference
from eyeoct.progress import progress_bar
from stand_ins import StandInModel

TINY = dict(cf_size=32, oct_height=32, oct_width=32)


class Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True


@contextmanager
def stderr_as(stream: io.StringIO) -> Iterator[io.StringIO]:
    """Replace sys.stderr inside the test body (pytest re-installs its own capture between test phases)."""
    saved, sys.stderr = sys.stderr, stream
    try:
        yield stream
    finally:
        sys.stderr = saved


def test_bar_shows_counts_and_eta_on_a_terminal_only():
    with stderr_as(Terminal()) as terminal:
        assert list(progress_bar(range(3), desc="work", unit="case")) == [0, 1, 2]
        assert progress_bar(range(3), quiet=True).disable
    shown = terminal.getvalue()
    assert "work" in shown and "3/3" in shown and "<" in shown  # [elapsed<remaining]
    with stderr_as(io.StringIO()) as plain:  # a pipe or a log file
        assert list(progress_bar(range(3), desc="work")) == [0, 1, 2]
    assert plain.getvalue() == ""


def test_inference_counts_volumes(tmp_path):
    folder = tmp_path / "cf"
    folder.mkdir()
    for name in "abc":
        Image.fromarray(np.full((20, 20, 3), 100, np.uint8)).save(folder / f"{name}.png")
    options = InferenceOptions(steps=2, samples_per_input=2, batch_size=4, size=(24, 16), ext="png")
    with stderr_as(Terminal()) as terminal:
        run_inference(StandInModel(), cf_preparer(32), collect_inputs(folder), tmp_path / "out", options)
    shown = terminal.getvalue()
    assert "sampling (dpmpp-2m, 2 steps)" in shown and "6/6" in shown and "volume" in shown
    assert "checking inputs" in shown and "3/3" in shown
    with stderr_as(Terminal()) as quiet:
        run_inference(StandInModel(), cf_preparer(32), collect_inputs(folder), tmp_path / "out2",
                      InferenceOptions(steps=2, size=(24, 16), ext="png", progress=False))
    assert quiet.getvalue() == ""


def test_phantom_export_counts_eyes(tmp_path):
    with stderr_as(Terminal()) as terminal:
        write_phantom_dataset(tmp_path / "p", 3, config=PhantomConfig(**TINY), two_panel_fraction=0.0)
    assert "phantom eyes" in terminal.getvalue() and "3/3" in terminal.getvalue()


def test_baselines_count_cases_per_pass(tmp_path):
    torch.manual_seed(0)
    train = PhantomDataset(start=0, num_cases=4, phantom=TINY)
    heldout = PhantomDataset(start=100, num_cases=3, phantom=TINY)
    with stderr_as(Terminal()) as terminal:
        run_baselines(train, [heldout], tmp_path / "b", BaselineSettings(which=("mean", "nn_pixel"), batch_size=2))
    shown = terminal.getvalue()
    assert "baselines: training pass" in shown and "4/4" in shown
    assert "baselines: held-out pass 1/1" in shown and "3/3" in shown
    assert "baselines: retrieved volumes" in shown

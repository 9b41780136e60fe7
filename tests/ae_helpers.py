"""Shared pieces of the stage-1 tests: the train_ae.py entry point and reading a run folder."""
from __future__ import annotations

from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from script_helpers import REPO_ROOT, script_main, script_path, the_run_dir

TINY_CONFIG = REPO_ROOT / "configs" / "ae" / "tiny_test.yaml"
TRAIN_AE = script_path("train_ae")
RUN_NAME = "ae_tiny_test"


def train_ae_main():
    """`main(argv)` of scripts/train_ae.py."""
    return script_main("train_ae")


def only_run_dir(root: Path) -> Path:
    """The single run folder of the tiny stage-1 config under `root`."""
    return the_run_dir(root, RUN_NAME)


def tensorboard_events(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def adam_steps(optimizer_state: dict) -> set[int]:
    """The distinct per-parameter step counts of an Adam(W) optimiser state dict."""
    return {int(s["step"]) for s in optimizer_state["state"].values()}

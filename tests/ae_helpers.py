"""Shared pieces of the stage-1 tests: the train_ae.py entry point and reading a run folder."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO_ROOT / "configs" / "ae" / "tiny_test.yaml"
TRAIN_AE = REPO_ROOT / "scripts" / "train_ae.py"


def train_ae_main():
    """`main(argv)` of scripts/train_ae.py (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("train_ae_script", TRAIN_AE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def only_run_dir(root: Path, name: str = "ae_tiny_test") -> Path:
    runs = sorted((root / name).iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def tensorboard_events(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def adam_steps(optimizer_state: dict) -> set[int]:
    """The distinct per-parameter step counts of an Adam(W) optimiser state dict."""
    return {int(s["step"]) for s in optimizer_state["state"].values()}

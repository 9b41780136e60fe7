"""The repository root and the scripts of scripts/ for tests: run in this process, or as a subprocess that can be
killed (with `script_env`)."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import torch

from eyeoct.cli import load_training_config, prepare_run_dir

REPO_ROOT = Path(__file__).resolve().parents[1]


def script_path(name: str) -> Path:
    return REPO_ROOT / "scripts" / f"{name}.py"


def script_main(name: str):
    """`main(argv)` of scripts/<name>.py (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", script_path(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def config_from_args(args) -> tuple:
    """`(config, run_dir, checkpoint to resume or None)` as the training commands get them, the config written into
    the run folder (`eyeoct.commands.train_common`)."""
    cfg, run_dir, ckpt = load_training_config(args)
    return cfg, *prepare_run_dir(cfg, args, run_dir, ckpt)


def script_env() -> dict[str, str]:
    """The environment of a script subprocess: this checkout importable, one thread (as the tests run),
    and no launcher variables of an outer job."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_PORT"):
        env.pop(var, None)
    return env


def script_command(name: str, *args: str) -> list[str]:
    return [sys.executable, str(script_path(name)), *args]


def the_run_dir(root: Path, name: str) -> Path:
    """The single run folder under `root/name/`."""
    runs = sorted((root / name).iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the model state (EMA shadows included) in `run_dir/checkpoints/last.ckpt`."""
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    return {name: value for name, value in state.items() if isinstance(value, torch.Tensor)}


def max_weight_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)

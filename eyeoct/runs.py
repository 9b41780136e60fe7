"""Run folders: `runs/<name>/<YYYYmmdd-HHMMSS>/` with `config.yaml`, `checkpoints/`, `samples/`.

A new run never reuses an existing folder. Resuming takes a run folder (its `config.yaml` and
`checkpoints/last.ckpt`) or a checkpoint file inside one.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

RUN_DIR_ENV = "EYEOCT_RUN_DIR"
CONFIG_NAME = "config.yaml"
EXPORT_SUBDIR = "export"  # <run_dir>/export/: a run's exported model (export-2/, ... for later ones)
CHECKPOINT_FOLDER = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"


class RunDirError(ValueError):
    """A run folder or checkpoint that cannot be used as asked."""


def process_rank() -> int:
    """Global rank of this process as told by Lightning, torchrun or SLURM (0 when single)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK"):
        value = os.environ.get(var)
        if value and value.isdigit() and int(value) > 0:
            return int(value)
    return 0


RUN_SUBFOLDERS = (CHECKPOINT_FOLDER, "samples")


def _make_subfolders(run_dir: Path, subfolders: tuple[str, ...] = RUN_SUBFOLDERS) -> Path:
    for sub in subfolders:
        (run_dir / sub).mkdir(exist_ok=True)
    return run_dir


def create_run_dir(root: str | Path, name: str, subfolders: tuple[str, ...] = RUN_SUBFOLDERS) -> Path:
    """Create and return a new `root/name/<timestamp>[-k]/` folder (with `subfolders`); never an existing one."""
    base = Path(root) / name
    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        candidate = base / (stamp if k == 0 else f"{stamp}-{k}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return _make_subfolders(candidate, subfolders)
    raise RunDirError(f"could not find a free run folder under {base} for {stamp}")


def claim_run_dir(path: str | Path) -> Path:
    """Use an explicitly named run folder: it must be new or empty (shared by all ranks of a job)."""
    run_dir = Path(path)
    if process_rank() == 0:
        if run_dir.exists() and any(run_dir.iterdir()):
            raise RunDirError(f"run folder {run_dir} already holds files; use --resume {run_dir} to continue it")
        run_dir.mkdir(parents=True, exist_ok=True)
        _make_subfolders(run_dir)
    return run_dir


def run_files(run_dir: str | Path, ckpt: str | Path | None = None) -> tuple[Path, Path]:
    """`(config, checkpoint)` of a run folder: `run_dir/config.yaml` and `ckpt`, by default
    `run_dir/checkpoints/last.ckpt` (neither checked to exist)."""
    run_dir = Path(run_dir)
    return run_dir / CONFIG_NAME, Path(ckpt) if ckpt is not None else run_dir / CHECKPOINT_FOLDER / LAST_CHECKPOINT


def resolve_resume(path: str | Path) -> tuple[Path, Path]:
    """Return `(run_dir, checkpoint)` for a run folder or a checkpoint file inside `run_dir/checkpoints/`."""
    path = Path(path)
    if path.is_dir():
        run_dir, ckpt = path, run_files(path)[1]
        if not ckpt.is_file():
            raise RunDirError(f"cannot resume {run_dir}: expected the checkpoint {ckpt}, which does not exist")
    elif path.is_file():
        if path.parent.name != CHECKPOINT_FOLDER:
            raise RunDirError(f"cannot resume from {path}: expected a checkpoint inside <run_dir>/checkpoints/")
        run_dir, ckpt = path.parent.parent, path
    else:
        raise RunDirError(f"cannot resume: {path} is neither a run folder nor a checkpoint file")
    if not (run_dir / CONFIG_NAME).is_file():
        raise RunDirError(f"cannot resume {run_dir}: its {CONFIG_NAME} is missing")
    return run_dir, ckpt


def new_export_dir(run_dir: str | Path) -> Path:
    """`<run_dir>/export/`, or the first of `export-2/`, `export-3/`, ... that does not exist yet."""
    base = Path(run_dir) / EXPORT_SUBDIR
    candidate, k = base, 2
    while candidate.exists():
        candidate, k = base.with_name(f"{EXPORT_SUBDIR}-{k}"), k + 1
    return candidate

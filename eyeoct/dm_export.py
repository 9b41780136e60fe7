"""Export of a trained stage-2 model (format: `cldm.export`) at the end of training or later from a run.

An export never replaces another: the first goes to `<run_dir>/export/`, later ones (a resumed run that
ends again, a re-export with `--no-ema` or another checkpoint) to `export-2/`, `export-3/`, ...
"""
from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.strategies import FSDPStrategy

from cldm.cldm import ControlLDM
from cldm.export import export_controlldm
from eyeoct.config import load_config
from eyeoct.runs import CONFIG_NAME, new_export_dir, resolve_resume

logger = logging.getLogger(__name__)


class ExportControlLDM(pl.Callback):
    """At the end of `fit` (rank 0) export the model to a new `<run_dir>/export*/` folder (EMA weights
    unless `use_ema` is false)."""

    def __init__(self, use_ema: bool = True):
        self.use_ema = bool(use_ema)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if isinstance(trainer.strategy, FSDPStrategy):
            logger.warning("no export at the end of an FSDP run (sharded weights): run "
                           "scripts/train_dm.py --export-only %s", trainer.default_root_dir)
            return
        if trainer.is_global_zero:
            export_controlldm(pl_module, new_export_dir(trainer.default_root_dir), self.use_ema,
                              source={"run_dir": str(trainer.default_root_dir), "global_step": trainer.global_step})


def export_run(run_or_ckpt: str | Path, ckpt: str | Path | None = None, use_ema: bool = True) -> Path:
    """Export a run's `last.ckpt` (or the checkpoint `run_or_ckpt` names, or `ckpt`) to a new export folder."""
    if ckpt is not None and Path(run_or_ckpt).is_dir():
        run_dir, ckpt = Path(run_or_ckpt), Path(ckpt)
    else:
        run_dir, default_ckpt = resolve_resume(run_or_ckpt)
        ckpt = Path(ckpt) if ckpt is not None else default_ckpt
    model = ControlLDM.load_for_inference(ckpt, load_config([run_dir / CONFIG_NAME]))
    return export_controlldm(model, new_export_dir(run_dir), use_ema, source={"checkpoint": str(ckpt)})

"""Builds the Lightning pieces of a training run from its config and fits (shared by both stages)."""
from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.plugins.io import TorchCheckpointIO

from eyeoct.config import ConfigError, instantiate_from_config, require, to_container
from eyeoct.data.datamodule import EyeOCTDataModule
from eyeoct.runs import CHECKPOINT_FOLDER, RUN_DIR_ENV, run_files
from eyeoct.speed import SpeedSettings, apply_to_model, apply_to_process, trainer_arguments
from ldm.randomness import StepRandomness
from ldm.util.files import atomic_write

logger = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file and renames it, and loads with `weights_only=True`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: torch.save(checkpoint, handle), fsync=True)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint not found: {path}")
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


class SaveLastOnTrainEnd(pl.Callback):
    """Writes `last.ckpt` when training ends unless the final step was just saved, so no step is lost."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._saved_step: int | None = None

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self._saved_step = trainer.global_step

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._saved_step != trainer.global_step:
            trainer.save_checkpoint(self.path)


def build_callbacks(cfg: DictConfig, run_dir: Path) -> list[pl.Callback]:
    """Checkpointing (last + best by `checkpoint.monitor`), learning-rate logging, and config callbacks."""
    ckpt_cfg = OmegaConf.select(cfg, "checkpoint", default=None) or {}
    monitor = ckpt_cfg.get("monitor")
    checkpoint = ModelCheckpoint(
        dirpath=run_dir / CHECKPOINT_FOLDER,
        filename="best-{step}" if monitor else "step-{step}",
        monitor=monitor,
        mode=ckpt_cfg.get("mode", "min"),
        save_top_k=1,
        save_last=True,
        every_n_train_steps=ckpt_cfg.get("every_n_train_steps"),
        auto_insert_metric_name=False,
        enable_version_counter=False,  # a resumed run keeps writing last.ckpt, never last-v1.ckpt
    )
    callbacks: list[pl.Callback] = [checkpoint, LearningRateMonitor(logging_interval="step"),
                                    SaveLastOnTrainEnd(run_files(run_dir)[1])]
    for node in OmegaConf.select(cfg, "callbacks", default=None) or []:
        callbacks.append(instantiate_from_config(node))
    return callbacks


def check_validation_interval(trainer_kwargs: dict[str, Any]) -> None:
    """Validation (and the checkpoints it triggers) must fall between optimiser steps, never inside an
    accumulation window, whose partial gradients a checkpoint does not hold."""
    interval, accumulate = trainer_kwargs.get("val_check_interval"), trainer_kwargs.get("accumulate_grad_batches", 1)
    if isinstance(interval, int) and interval % int(accumulate):
        raise ConfigError(f"trainer.val_check_interval={interval} (batches) must be a multiple of "
                          f"trainer.accumulate_grad_batches={accumulate}, so validation checkpoints fall between "
                          f"optimiser steps")


def build_trainer(cfg: DictConfig, run_dir: Path, shards_its_data: bool = False) -> pl.Trainer:
    """A `pl.Trainer` whose settings come from `cfg.trainer` and `cfg.speed`, logging TensorBoard into the run
    folder.

    `shards_its_data`: the datamodule splits batches over the ranks itself (EyeOCTDataModule), so
    Lightning must not wrap its samplers.
    """
    trainer_kwargs = to_container(OmegaConf.select(cfg, "trainer", default=None)) or {}
    check_validation_interval(trainer_kwargs)
    trainer_kwargs = trainer_arguments(SpeedSettings.from_config(cfg), trainer_kwargs)
    if shards_its_data:
        if trainer_kwargs.get("use_distributed_sampler"):
            raise ConfigError("trainer.use_distributed_sampler=true: EyeOCTDataModule shards the data over the "
                              "ranks itself (a resumable order); remove the key")
        trainer_kwargs["use_distributed_sampler"] = False
    # events in <run>/tensorboard/; an empty version also keeps a meaningless `v_num` off the progress bar
    tb_logger = TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)
    trainer_kwargs["plugins"] = [AtomicCheckpointIO(), *trainer_kwargs.get("plugins", [])]
    return pl.Trainer(
        default_root_dir=str(run_dir),
        logger=tb_logger,
        callbacks=build_callbacks(cfg, run_dir),
        **trainer_kwargs,
    )


@contextmanager
def _run_dir_for_workers(run_dir: Path) -> Iterator[None]:
    """Lets worker processes that Lightning launches find the same run folder."""
    previous = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous


def run_training(cfg: DictConfig, run_dir: Path, ckpt_path: Path | None = None) -> tuple[pl.Trainer, pl.LightningModule]:
    """Seed, build datamodule, model and trainer from the config, and fit (resuming from `ckpt_path`).

    `run.seed` seeds the model's initialisation, the data order (per pass) and, with the global rank and
    step, every random draw of a training step (see ldm/randomness.py).
    """
    seed = int(OmegaConf.select(cfg, "run.seed", default=0))
    speed = SpeedSettings.from_config(cfg)
    apply_to_process(speed)
    pl.seed_everything(seed, workers=True)
    datamodule = instantiate_from_config(require(cfg, "data"))
    model = instantiate_from_config(require(cfg, "model"))
    apply_to_model(model, speed)
    if isinstance(model, StepRandomness):
        model.run_seed = seed
    if isinstance(datamodule, EyeOCTDataModule):
        datamodule.run_seed = seed
    trainer = build_trainer(cfg, run_dir, shards_its_data=isinstance(datamodule, EyeOCTDataModule))
    with _run_dir_for_workers(run_dir), warnings.catch_warnings():
        # our datamodule resumes mid-epoch through its own checkpoint state, which Lightning does not see
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch")
        trainer.fit(model, datamodule=datamodule, ckpt_path=str(ckpt_path) if ckpt_path else None)
    logger.info("finished at step %d; checkpoints in %s", trainer.global_step, run_dir / CHECKPOINT_FOLDER)
    return trainer, model

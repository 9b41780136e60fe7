"""Export of a trained stage-1 autoencoder with its latent scale factor, at the end of training or later."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf

from eyeoct.config import instantiate_from_config, load_config, require
from eyeoct.runs import CONFIG_NAME, new_export_dir, resolve_resume
from ldm.models.autoencoder import AutoencoderKL
from ldm.models.autoencoder_export import export_autoencoder, measure_scale_factor
from ldm.util.checkpoints import read_state_dict

logger = logging.getLogger(__name__)



def measure_and_export(model: AutoencoderKL, batches: Iterable[Any], out_dir: str | Path, n_batches: int,
                       seed: int = 0) -> tuple[Path, float]:
    """Measure ``1/std(z)`` over ``n_batches`` batches (seeded posterior samples) and export to ``out_dir``."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    scale_factor, used = measure_scale_factor(model, batches, n_batches, generator)
    if used < n_batches:
        logger.warning("scale factor measured on %d batches only (%d asked): the loader is shorter", used, n_batches)
    return export_autoencoder(model, out_dir, scale_factor, used), scale_factor


class ExportAutoencoder(pl.Callback):
    """At the end of ``fit`` (rank 0 only) export to a new ``<run_dir>/export*/`` folder (see
    `eyeoct.runs.new_export_dir`) with the scale factor measured over ``n_batches`` training batches."""

    def __init__(self, n_batches: int = 16, seed: int = 0):
        if n_batches < 1:
            raise ValueError(f"ExportAutoencoder: n_batches must be >= 1, got {n_batches}")
        self.n_batches, self.seed = n_batches, seed

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        out_dir = new_export_dir(trainer.default_root_dir)
        measure_and_export(pl_module, trainer.train_dataloader, out_dir, self.n_batches, self.seed)


def export_settings(cfg) -> dict:
    """Params of the config's ExportAutoencoder callback ({} when the run has none)."""
    for node in OmegaConf.select(cfg, "callbacks", default=None) or []:
        if str(node.get("target", "")).endswith(".ExportAutoencoder"):
            return dict(node.get("params", None) or {})
    return {}


def export_run(run_or_ckpt: str | Path, n_batches: int | None = None) -> Path:
    """Export a run's checkpoint (its ``last.ckpt`` or the given file) to a new ``<run_dir>/export*/`` folder."""
    run_dir, ckpt = resolve_resume(run_or_ckpt)
    cfg = load_config([run_dir / CONFIG_NAME])
    settings = export_settings(cfg)
    n_batches = n_batches or int(settings.get("n_batches", 16))
    model = instantiate_from_config(require(cfg, "model"))
    model.load_state_dict(read_state_dict(ckpt, "a stage-1 Lightning checkpoint (last.ckpt of a train_ae.py run)"))
    datamodule = instantiate_from_config(require(cfg, "data"))
    datamodule.setup("fit")
    out_dir, _ = measure_and_export(model, datamodule.train_dataloader(), new_export_dir(run_dir), n_batches,
                                    int(settings.get("seed", 0)))
    return out_dir

"""The stage-2 model for inference, from a run folder, a config file and a checkpoint, or an export folder."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from cldm.cldm import ControlLDM
from cldm.export import EXPORT_CONFIG, EXPORT_WEIGHTS, is_export_folder, load_exported_controlldm, read_export_spec
from eyeoct.config import load_config, require, resolve_config_path
from eyeoct.runs import run_files

logger = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A ControlLDM ready to sample, the CF size it was trained on, and which weights it samples with."""

    model: ControlLDM
    cf_size: int
    uses_ema: bool
    checkpoint: Path


def resolve_model_files(run_dir: str | Path | None = None, config: str | Path | None = None,
                        ckpt: str | Path | None = None) -> tuple[Path, Path]:
    """`(config, checkpoint)`: `run_dir/config.yaml` and `run_dir/checkpoints/last.ckpt` unless `ckpt` is given;
    for a stage-2 export folder (see `cldm.export`), its `model.yaml` and `model.safetensors`."""
    if run_dir is not None and is_export_folder(run_dir):
        if config is not None or ckpt is not None:
            raise ValueError(f"{run_dir} is an export folder holding its own config and weights: drop --config/--ckpt")
        config, ckpt = Path(run_dir) / EXPORT_CONFIG, Path(run_dir) / EXPORT_WEIGHTS
    elif run_dir is not None:
        if config is not None:
            raise ValueError("give either --run RUN_DIR or --config CFG (with --ckpt), not both")
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"run folder not found: {run_dir}")
        config, ckpt = run_files(run_dir, ckpt)
    elif config is None or ckpt is None:
        raise ValueError("name the model with --run RUN_DIR, or with both --config CFG and --ckpt CKPT")
    else:
        config = resolve_config_path(config)  # a file, or a packaged name
    config, ckpt = Path(config), Path(ckpt)
    if not config.is_file():
        raise FileNotFoundError(f"model config not found: expected {config}")
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint not found: expected {ckpt}")
    return config, ckpt


def _is_export(ckpt: str | Path) -> bool:
    return Path(ckpt).name == EXPORT_WEIGHTS and is_export_folder(Path(ckpt).parent)


def model_config(config: str | Path, ckpt: str | Path, first_stage: str | Path | None = None) -> DictConfig:
    """The config the model is built from: the run config (`first_stage` replacing its stage-1 export
    folder), or an export's `model.yaml` under `model:`."""
    if _is_export(ckpt):
        if first_stage is not None:
            raise ValueError("an export folder holds its autoencoder: --first-stage is not used with it")
        return OmegaConf.create({"model": read_export_spec(Path(ckpt).parent)})
    cfg = load_config([config])
    if first_stage is not None:
        cfg.model.params.first_stage = str(first_stage)
    return cfg


def _load_export(folder: Path, cf_size: int, device: str | torch.device, use_ema: bool) -> LoadedModel:
    model, spec = load_exported_controlldm(folder)
    if spec["weights"] == "ema" and not use_ema:
        raise ValueError(f"the export {folder} holds EMA weights; for the raw ones export again with "
                         f"scripts/train_dm.py --export-only <run> --no-ema")
    logger.info("loaded the export %s on %s (%s weights)", folder, device, spec["weights"])
    return LoadedModel(model=model.to(device), cf_size=cf_size, uses_ema=spec["weights"] == "ema", checkpoint=folder / EXPORT_WEIGHTS)


def load_inference_model(config: str | Path, ckpt: str | Path, device: str | torch.device,
                         use_ema: bool = True, first_stage: str | Path | None = None) -> LoadedModel:
    """Build the model of `config`, load `ckpt` (weights_only) and move it to `device`.

    EMA weights are sampled with when the checkpoint has them (the run was trained with `use_ema`)
    unless `use_ema` is False. `first_stage` replaces the config's stage-1 export folder (a run copied
    to another machine; checkpoints that keep the autoencoder's config do without it). An export's
    `model.yaml` and `model.safetensors` load without any pickle, with the weights it holds.
    """
    cfg = model_config(config, ckpt, first_stage)
    cf_size = int(require(cfg, "model.params.cf_size"))
    if _is_export(ckpt):
        return _load_export(Path(ckpt).parent, cf_size, device, use_ema)
    model = ControlLDM.load_for_inference(ckpt, cfg)
    uses_ema = bool(use_ema and model.ema is not None)
    if uses_ema:
        model.merge_ema()  # loaded once: sampling then swaps nothing
    else:
        model.use_ema = False
    model = model.to(device)
    logger.info("loaded %s on %s, sampling with %s weights", ckpt, device, "EMA" if uses_ema else "raw")
    return LoadedModel(model=model, cf_size=cf_size, uses_ema=uses_ema, checkpoint=Path(ckpt))

"""The stage-2 model for inference, from a run folder or from a config file and a checkpoint."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from cldm.cldm import ControlLDM
from eyeoct.config import load_config, require
from eyeoct.runs import CONFIG_NAME, LAST_CHECKPOINT

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
    """`(config, checkpoint)`: `run_dir/config.yaml` and `run_dir/checkpoints/last.ckpt` unless `ckpt` is given."""
    if run_dir is not None:
        if config is not None:
            raise ValueError("give either --run RUN_DIR or --config CFG (with --ckpt), not both")
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"run folder not found: {run_dir}")
        config = run_dir / CONFIG_NAME
        ckpt = ckpt if ckpt is not None else run_dir / "checkpoints" / LAST_CHECKPOINT
    elif config is None or ckpt is None:
        raise ValueError("name the model with --run RUN_DIR, or with both --config CFG and --ckpt CKPT")
    config, ckpt = Path(config), Path(ckpt)
    if not config.is_file():
        raise FileNotFoundError(f"model config not found: expected {config}")
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint not found: expected {ckpt}")
    return config, ckpt


def default_device() -> str:
    """`cuda` when a GPU is visible, else `cpu`."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_inference_model(config: str | Path, ckpt: str | Path, device: str | torch.device,
                         use_ema: bool = True, first_stage: str | Path | None = None) -> LoadedModel:
    """Build the model of `config`, load `ckpt` (weights_only) and move it to `device`.

    EMA weights are sampled with when the checkpoint has them (the run was trained with `use_ema`)
    unless `use_ema` is False. `first_stage` replaces the config's stage-1 export folder (a run copied
    to another machine; checkpoints that keep the autoencoder's config do without it).
    """
    cfg = load_config([config])
    if first_stage is not None:
        cfg.model.params.first_stage = str(first_stage)
    cf_size = int(require(cfg, "model.params.cf_size"))
    model = ControlLDM.load_for_inference(ckpt, cfg)
    uses_ema = bool(use_ema and model.ema is not None)
    if uses_ema:
        model.merge_ema()  # loaded once: sampling then swaps nothing
    else:
        model.use_ema = False
    model = model.to(device)
    logger.info("loaded %s on %s, sampling with %s weights", ckpt, device, "EMA" if uses_ema else "raw")
    return LoadedModel(model=model, cf_size=cf_size, uses_ema=uses_ema, checkpoint=Path(ckpt))

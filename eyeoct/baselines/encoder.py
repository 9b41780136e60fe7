"""The CF encoder used by the encoder-space retrieval baseline.

Either a fresh encoder from a YAML holding a `cf_encoder:` target/params block (random open_clip
tower, or local tower weights via `pretrained:`), or the trained encoder of a stage-2 ControlLDM
checkpoint (`--cf-encoder-ckpt`: a stage-2 run folder or a checkpoint, with the config it was trained with,
by default the run folder's own `config.yaml`).
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from torch import nn

from eyeoct.config import ConfigError, instantiate_from_config, load_config
from eyeoct.runs import CONFIG_NAME, RunDirError, resolve_resume

logger = logging.getLogger(__name__)

DEFAULT_ENCODER_CONFIG = "baselines/cf_encoder_random"  # a packaged config (see eyeoct.config.resolve_config_path)
ENCODER_KEY = "cf_encoder"


def load_cf_encoder(config_path: str | Path | None = None, ckpt_path: str | Path | None = None,
                    seed: int = 0) -> nn.Module:
    """CF encoder in eval mode: trained from a ControlLDM checkpoint, or built from a config.

    Without a checkpoint, `config_path` (default: the packaged `baselines/cf_encoder_random`) must hold a
    `cf_encoder:` target/params block; its random weights are drawn with `seed`. With a checkpoint,
    `ckpt_path` is a stage-2 run folder (its `checkpoints/last.ckpt`) or checkpoint, `config_path` the
    stage-2 config (default: the run folder's `config.yaml`), and the model's `cf_encoder` is used with
    its EMA weights if the model keeps them (as sampling does).
    """
    if ckpt_path is not None:
        return _trained_encoder(config_path, Path(ckpt_path))
    path = config_path if config_path is not None else DEFAULT_ENCODER_CONFIG
    cfg = load_config([path])
    if ENCODER_KEY not in cfg:
        raise ConfigError(f"{path}: expected a '{ENCODER_KEY}:' block with target/params "
                          f"(e.g. target: cldm.cf_encoder.CFEncoder); a stage-2 config needs --cf-encoder-ckpt")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = instantiate_from_config(cfg[ENCODER_KEY])
    logger.info("CF encoder for retrieval: %s from %s (untrained projection, seed %d)",
                cfg[ENCODER_KEY]["target"], path, seed)
    return encoder.eval()


def _trained_encoder(config_path: str | Path | None, ckpt_path: Path) -> nn.Module:
    from cldm.cldm import ControlLDM

    if config_path is None:  # a run folder, or a checkpoint inside one: its own config.yaml
        try:
            run_dir, ckpt_path = resolve_resume(ckpt_path)
        except RunDirError as err:
            raise ConfigError(f"--cf-encoder-ckpt without --cf-encoder-config needs a stage-2 run folder or a "
                              f"checkpoint inside one: {err}") from err
        config_path = run_dir / CONFIG_NAME
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"stage-2 checkpoint not found: {ckpt_path}")
    model = ControlLDM.load_for_inference(ckpt_path, load_config([config_path]))
    with model.ema_weights():  # the weights sampling uses: EMA when the model keeps it
        encoder = copy.deepcopy(model.cf_encoder)
    logger.info("CF encoder for retrieval: trained encoder of %s (EMA weights: %s)", ckpt_path, model.use_ema)
    return encoder.eval()

"""Export of a trained stage-2 ControlLDM as one safetensors file and one YAML: loading it runs no pickle.

    <folder>/model.safetensors   every weight: UNet, ControlNet, CF encoder, null condition, and the
                                 autoencoder under `first_stage.` (EMA weights unless exported raw)
    <folder>/model.yaml          `target` + `params` that rebuild the model on their own (the autoencoder's
                                 config and scale factor inline, as stage 1's `autoencoder_spec` writes them;
                                 no stage-1 export folder, pretrained file or EMA needed), `weights: ema|raw`,
                                 and `source` (where the weights came from)
"""
from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Mapping

import torch
import yaml
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file

from cldm.cldm import ControlLDM
from ldm.util.config import check_stored_targets, instantiate_from_config, upgrade_stored_spec
from ldm.util.files import temporary_sibling
from ldm.models.autoencoder import AutoencoderKL
from ldm.models.autoencoder_export import TARGET as AUTOENCODER_TARGET
from ldm.models.autoencoder_export import autoencoder_spec

logger = logging.getLogger(__name__)

TARGET = "cldm.cldm.ControlLDM"
# the only targets an export's model.yaml may name: the model and its autoencoder
STORED_TARGETS = {"target": TARGET, "params.first_stage_config.target": AUTOENCODER_TARGET}
EXPORT_WEIGHTS = "model.safetensors"
EXPORT_CONFIG = "model.yaml"
EMA_PREFIX = "ema."


def is_export_folder(path: str | Path) -> bool:
    """True when `path` is a folder holding a stage-2 export (`model.yaml`)."""
    return (Path(path) / EXPORT_CONFIG).is_file()


def export_weights(model: ControlLDM, use_ema: bool = True) -> tuple[dict[str, torch.Tensor], bool]:
    """CPU copies of every weight (EMA values swapped in when `use_ema` and the model keeps them), without
    the EMA's own buffers; returns `(weights, ema_used)`."""
    has_ema = any(name.startswith(EMA_PREFIX) for name in model.state_dict())
    with model.ema_weights() if use_ema and has_ema else nullcontext():
        weights = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in model.state_dict().items()
                   if not name.startswith(EMA_PREFIX)}
    return weights, use_ema and has_ema


def export_spec(model: ControlLDM) -> dict[str, Any]:
    """`target`/`params` rebuilding `model` from its saved hyperparameters, self-contained: the autoencoder
    inline, no EMA (the exported weights are the ones to use) and no pretrained files to read."""
    if not isinstance(model.first_stage, AutoencoderKL):
        raise ValueError(f"only an AutoencoderKL first stage can be exported, got {type(model.first_stage).__name__}")
    if not model.hparams:
        raise ValueError("the model has no saved hyperparameters to rebuild it from")
    params = OmegaConf.to_container(OmegaConf.create(dict(model.hparams)))  # plain lists: YAML-safe
    first_stage = autoencoder_spec(model.first_stage, model.scale_factor)
    params.update(first_stage=None, first_stage_config={"target": first_stage["target"], "params": first_stage["params"]},
                  scale_factor=first_stage["scale_factor"], use_ema=False, unet_init=None)
    params["cf_encoder_config"] = {**params["cf_encoder_config"], "pretrained": None}
    return {"target": TARGET, "params": params}


def export_controlldm(model: ControlLDM, out_dir: str | Path, use_ema: bool = True,
                      source: Mapping[str, Any] | None = None) -> Path:
    """Write `model.safetensors` and `model.yaml` into the new folder `out_dir` (an existing one is refused);
    the files appear together (written in a temporary folder, then renamed)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"refusing to overwrite the existing export folder {out_dir}")
    spec = export_spec(model)
    weights, ema_used = export_weights(model, use_ema)
    if use_ema and not ema_used:
        logger.warning("the model keeps no EMA weights: exporting its raw weights")
    spec.update(weights="ema" if ema_used else "raw", source=dict(source or {}))
    tmp = temporary_sibling(out_dir)
    tmp.mkdir(parents=True)
    save_file(weights, str(tmp / EXPORT_WEIGHTS))
    (tmp / EXPORT_CONFIG).write_text(yaml.safe_dump(spec, sort_keys=False))
    tmp.rename(out_dir)
    logger.info("exported the stage-2 model (%s weights) to %s", spec["weights"], out_dir)
    return out_dir


def read_export_spec(folder: str | Path) -> dict[str, Any]:
    """The checked `model.yaml` of an export folder."""
    path = Path(folder) / EXPORT_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"stage-2 export config not found: {path} (written by scripts/train_dm.py into "
                                f"<run_dir>/export/)")
    spec = upgrade_stored_spec(yaml.safe_load(path.read_text()), str(path))
    missing = [key for key in ("target", "params", "weights") if not isinstance(spec, dict) or key not in spec]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}")
    check_stored_targets(spec, STORED_TARGETS, str(path))
    return spec


def load_exported_controlldm(folder: str | Path) -> tuple[ControlLDM, dict[str, Any]]:
    """Rebuild an exported model (eval mode) from its folder; returns `(model, spec)` (`spec["weights"]` says
    whether they are the EMA or the raw weights)."""
    spec = read_export_spec(folder)
    weights_path = Path(folder) / EXPORT_WEIGHTS
    if not weights_path.is_file():
        raise FileNotFoundError(f"stage-2 export weights not found: {weights_path}")
    model = instantiate_from_config({"target": spec["target"], "params": spec["params"]})
    model.load_state_dict(load_file(str(weights_path)), strict=True)
    return model.eval(), spec

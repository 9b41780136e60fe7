"""Latent-scale measurement and export/load of a trained KL autoencoder (stage 1).

    <folder>/autoencoder.safetensors   encoder/decoder weights (no loss or discriminator)
    <folder>/autoencoder.yaml          `target`, `params` (rebuilding the model for encoding/decoding),
                                       `scale_factor` (1/std of the latents) and `n_batches_measured`
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Iterable

import torch
import yaml
from safetensors.torch import load_file, save_file

from ldm.models.autoencoder import AutoencoderKL
from ldm.util.config import check_stored_targets, upgrade_stored_spec
from ldm.util.files import temporary_sibling

logger = logging.getLogger(__name__)

TARGET = "ldm.models.autoencoder.AutoencoderKL"
EXPORT_WEIGHTS = "autoencoder.safetensors"
EXPORT_CONFIG = "autoencoder.yaml"


@torch.no_grad()
def measure_scale_factor(model: AutoencoderKL, batches: Iterable[Any], n_batches: int,
                         generator: torch.Generator | None = None) -> tuple[float, int]:
    """``1 / std`` of posterior samples z over the first ``n_batches`` batches; returns (factor, batches used).

    The std is over every latent element (all samples, channels and positions), accumulated in float64.
    """
    if n_batches < 1:
        raise ValueError(f"n_batches must be >= 1, got {n_batches}")
    was_training = model.training
    model.eval()
    total = total_sq = count = 0.0
    used = 0
    for batch in batches:
        if used == n_batches:
            break
        x = model.get_input(batch).to(model.device)
        z = model.encode(x).sample(generator).double()
        total, total_sq, count = total + z.sum().item(), total_sq + z.square().sum().item(), count + z.numel()
        used += 1
    model.train(was_training)
    if used == 0:
        raise ValueError("measure_scale_factor: no batches to measure the latent std on")
    variance = (total_sq - total * total / count) / (count - 1)
    return 1.0 / math.sqrt(variance), used


def autoencoder_spec(model: AutoencoderKL, scale_factor: float) -> dict:
    """What rebuilds `model` for encoding/decoding: target, constructor params (no loss) and scale factor."""
    return {"target": TARGET, "params": {"ddconfig": dict(model.ddconfig), "input_key": model.input_key},
            "scale_factor": float(scale_factor)}


def export_autoencoder(model: AutoencoderKL, out_dir: str | Path, scale_factor: float,
                       n_batches_measured: int) -> Path:
    """Write ``autoencoder.safetensors`` (encoder/decoder weights) and ``autoencoder.yaml`` into the new folder
    ``out_dir`` (an existing one is refused); the files appear together (written in a temporary folder, then
    renamed)."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"refusing to overwrite the existing export folder {out_dir}")
    weights = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()
               if not name.startswith("loss.")}
    spec = {**autoencoder_spec(model, scale_factor), "n_batches_measured": int(n_batches_measured)}
    tmp = temporary_sibling(out_dir)
    tmp.mkdir(parents=True)
    save_file(weights, str(tmp / EXPORT_WEIGHTS))
    (tmp / EXPORT_CONFIG).write_text(yaml.safe_dump(spec, sort_keys=False))
    tmp.rename(out_dir)
    logger.info("exported autoencoder to %s (scale_factor %.6g over %d batches)", out_dir, scale_factor,
                n_batches_measured)
    return out_dir


def load_exported_autoencoder(path: str | Path) -> tuple[AutoencoderKL, float]:
    """Rebuild an exported autoencoder (in eval mode) from its folder or yaml; returns (model, scale_factor)."""
    path = Path(path)
    config_path = path / EXPORT_CONFIG if path.is_dir() else path
    if not config_path.is_file():
        raise FileNotFoundError(f"exported autoencoder config not found: {config_path} (expected {EXPORT_CONFIG} "
                                "written by scripts/train_ae.py into <run_dir>/export/)")
    spec = upgrade_stored_spec(yaml.safe_load(config_path.read_text()), str(config_path))
    for key in ("target", "params", "scale_factor"):
        if key not in spec:
            raise ValueError(f"{config_path}: missing key '{key}'")
    check_stored_targets(spec, {"target": TARGET}, str(config_path))
    weights_path = config_path.parent / EXPORT_WEIGHTS
    if not weights_path.is_file():
        raise FileNotFoundError(f"exported autoencoder weights not found: {weights_path}")
    model = AutoencoderKL(**spec["params"])
    model.load_state_dict(load_file(str(weights_path)), strict=True)
    return model.eval(), float(spec["scale_factor"])

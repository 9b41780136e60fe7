"""Initialise a ``UNetModel`` (or a ``UNetEncoder``, e.g. a ControlNet branch) from a Stable Diffusion UNet.

Our module names mirror SD's, so the mapping is by name: ``time_embed.*``, ``input_blocks.*`` and
``middle_block.*`` go under ``encoder.`` in a ``UNetModel``; ``output_blocks.*`` and ``out.*`` keep their
names. A 1x1 conv weight and a linear weight of the same size (``proj_in``/``proj_out`` of SD 1.x vs
``use_linear``) are converted. Keys whose shapes differ are skipped and reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ldm.modules.unet import UNetEncoder, UNetModel
from ldm.util.checkpoints import read_state_dict

logger = logging.getLogger(__name__)

SD_UNET_PREFIX = "model.diffusion_model."
ENCODER_ROOTS = ("time_embed", "input_blocks", "middle_block")
DECODER_ROOTS = ("output_blocks", "out")


@dataclass
class SDInitReport:
    """Outcome of ``init_unet_from_sd``: our keys loaded / missing / shape-mismatched, SD keys unused."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"SD init: {len(self.loaded)} loaded, {len(self.missing)} missing, "
            f"{len(self.mismatched)} shape-mismatched, {len(self.unexpected)} unused SD keys"
        )


def read_sd_unet_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """UNet tensors of an SD checkpoint (safetensors, or torch loaded with ``weights_only=True``).

    A ``state_dict`` wrapper is unwrapped; with the ``model.diffusion_model.`` prefix present only those
    keys are kept (prefix stripped), otherwise keys under the SD UNet roots.
    """
    state = read_state_dict(path, "a local .safetensors or torch checkpoint (.ckpt/.pt/.pth) holding a Stable "
                            "Diffusion UNet state dict (keys input_blocks.*, optionally prefixed "
                            f"{SD_UNET_PREFIX!r}), e.g. an SD 1.x/2.x checkpoint downloaded beforehand")
    if any(key.startswith(SD_UNET_PREFIX) for key in state):
        return {k[len(SD_UNET_PREFIX) :]: v for k, v in state.items() if k.startswith(SD_UNET_PREFIX)}
    return {k: v for k, v in state.items() if k.split(".")[0] in ENCODER_ROOTS + DECODER_ROOTS}


def sd_key_to_ours(key: str, target: nn.Module) -> str | None:
    """Our parameter name for SD UNet key ``key`` in ``target`` (None when ``target`` has no such part)."""
    root = key.split(".")[0]
    if isinstance(target, UNetModel):
        if root in ENCODER_ROOTS:
            return "encoder." + key
        return key if root in DECODER_ROOTS else None
    if isinstance(target, UNetEncoder):
        return key if root in ENCODER_ROOTS else None
    raise TypeError(f"SD init needs a UNetModel or UNetEncoder, got {type(target).__name__}")


def _fit_shape(value: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """``value`` in ``shape``: as is, or converted between a 1x1 conv and a linear weight; else None."""
    if value.shape == shape:
        return value
    if value.ndim == 4 and value.shape[2:] == (1, 1) and value.shape[:2] == shape:
        return value[:, :, 0, 0]
    if len(shape) == 4 and shape[2:] == (1, 1) and value.shape == shape[:2]:
        return value[:, :, None, None]
    return None


@torch.no_grad()
def init_unet_from_sd(target: UNetModel | UNetEncoder, path: str | Path) -> SDInitReport:
    """Copy every shape-compatible SD UNet tensor from ``path`` into ``target``; log and return the report."""
    sd_state = read_sd_unet_state_dict(path)
    ours = target.state_dict()
    report = SDInitReport()
    to_load = {}
    for key, value in sd_state.items():
        our_key = sd_key_to_ours(key, target)
        if our_key is None or our_key not in ours:
            report.unexpected.append(key)
            continue
        fitted = _fit_shape(value, ours[our_key].shape)
        if fitted is None:
            report.mismatched.append((our_key, tuple(value.shape), tuple(ours[our_key].shape)))
            continue
        to_load[our_key] = fitted.to(ours[our_key].dtype)
    target.load_state_dict(to_load, strict=False)
    mismatched_keys = {key for key, _, _ in report.mismatched}
    report.loaded = sorted(to_load)
    report.missing = [key for key in ours if key not in to_load and key not in mismatched_keys]
    logger.info("%s (from %s)", report.summary(), path)
    for key, sd_shape, our_shape in report.mismatched:
        logger.info("SD init: %s skipped, SD shape %s vs ours %s", key, sd_shape, our_shape)
    if report.missing:
        logger.info("SD init: not in the SD file: %s", ", ".join(report.missing))
    return report

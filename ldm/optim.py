"""The optimiser and learning-rate schedule of both training stages: AdamW (fused where the device has the
kernel) and a linear warm-up followed by a constant or cosine learning rate."""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn

from ldm.util.config import check_keys

FUSED_CHOICES = ("auto", True, False)
FUSED_DEVICES = ("cpu", "cuda", "mps", "xpu")  # device types with a fused AdamW kernel in PyTorch 2.x
LR_DECAYS = ("constant", "cosine")


def fused_adamw_supported(params: list[nn.Parameter]) -> bool:
    """Whether PyTorch's fused AdamW kernel covers these parameters (floating point, one supported device)."""
    devices = {p.device.type for p in params}
    return (len(devices) == 1 and devices <= set(FUSED_DEVICES)
            and all(p.is_floating_point() for p in params))


def build_adamw(params: Iterable[nn.Parameter], lr: float, betas: Iterable[float], weight_decay: float,
                optimizer: Mapping[str, Any] | None = None) -> torch.optim.AdamW:
    """AdamW over `params`; `optimizer: {fused: auto|true|false}` picks the implementation.

    auto: the fused kernel where the parameters' device has one (CPU, CUDA), the multi-tensor (foreach)
    one otherwise; true: fused or an error naming why not; false: foreach. All compute the same update.
    """
    settings = dict(optimizer or {})
    check_keys("optimizer", settings, ["fused"])
    fused = settings.get("fused", "auto")
    if fused not in FUSED_CHOICES:
        raise ValueError(f"optimizer.fused must be auto, true or false, got {fused!r}")
    params = list(params)
    supported = fused_adamw_supported(params)
    if fused is True and not supported:
        devices = sorted({p.device.type for p in params})
        raise ValueError(f"optimizer.fused=true, but PyTorch has no fused AdamW for parameters on {devices}; "
                         f"use fused: auto")
    use_fused = supported if fused == "auto" else bool(fused)
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay,
                             fused=use_fused or None, foreach=None if use_fused else True)


def warmup_decay(warmup_steps: int, total_steps: int, decay: str = "constant",
                 min_ratio: float = 0.0) -> Callable[[int], float]:
    """Learning-rate multiplier of step n: ``(n + 1) / warmup_steps`` during the warm-up, then 1 (constant) or
    a cosine from 1 down to `min_ratio` at `total_steps` (constant when `total_steps` is unknown, 0)."""
    if decay not in LR_DECAYS:
        raise ValueError(f"lr_decay must be one of {LR_DECAYS}, got {decay!r}")
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_ratio}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if decay == "constant" or total_steps <= warmup_steps:
            return 1.0
        progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor

"""Activation (gradient) checkpointing switch shared by the UNet, the autoencoder and the CF encoder."""
from __future__ import annotations

from typing import Callable

import torch
from torch.utils.checkpoint import checkpoint


def checkpointed(fn: Callable[..., torch.Tensor], *args, enabled: bool) -> torch.Tensor:
    """``fn(*args)``; with ``enabled`` and gradients being recorded, its activations are dropped after the
    forward pass and recomputed in the backward pass (non-reentrant ``torch.utils.checkpoint``, which
    restores the RNG state, so dropout draws the same mask twice). Less memory, one more forward."""
    if enabled and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)

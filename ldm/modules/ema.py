"""Exponential moving average of the trainable parameters of any set of modules.

``shadow = decay * shadow + (1 - decay) * param`` after every optimiser step; with warm-up the decay of
the n-th update (n = 1, 2, ...) is ``min(decay, (1 + n) / (10 + n))``. The shadows are buffers, so the
EMA checkpoints with ``state_dict`` and moves with ``.to()`` when registered as a submodule.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
from torch import nn


def collect_trainable_parameters(items: nn.Module | nn.Parameter | Iterable) -> list[nn.Parameter]:
    """Trainable parameters of modules and/or parameters (nested iterables allowed), each once, in order."""
    if isinstance(items, (nn.Module, nn.Parameter)):
        items = [items]
    params, seen = [], set()
    for item in items:
        if isinstance(item, nn.Module):
            candidates = list(item.parameters())
        elif isinstance(item, nn.Parameter):
            candidates = [item]
        else:
            raise TypeError(f"EMA tracks nn.Module or nn.Parameter objects, got {type(item).__name__}")
        for p in candidates:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    return params


class EMA(nn.Module):
    """EMA over the parameters that require grad in ``modules`` at construction time."""

    def __init__(
        self,
        modules: nn.Module | nn.Parameter | Iterable,
        decay: float = 0.9999,
        use_warmup: bool = True,
    ):
        super().__init__()
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        params = collect_trainable_parameters(modules)
        if not params:
            raise ValueError("EMA got no trainable parameters")
        self.decay = decay
        self.use_warmup = use_warmup
        self._params = params  # plain list: the tracked parameters stay owned by their modules
        self._backup: list[torch.Tensor] | None = None
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        for index, p in enumerate(params):
            self.register_buffer(f"shadow_{index}", p.detach().clone())

    def _shadows(self) -> list[torch.Tensor]:
        return [getattr(self, f"shadow_{index}") for index in range(len(self._params))]

    def current_decay(self) -> float:
        """Decay the next ``update()`` will use."""
        n = int(self.num_updates) + 1
        return min(self.decay, (1 + n) / (10 + n)) if self.use_warmup else self.decay

    @torch.no_grad()
    def update(self) -> None:
        """Move every shadow towards its parameter (call after each optimiser step)."""
        decay = self.current_decay()
        self.num_updates += 1
        for index, (shadow, p) in enumerate(zip(self._shadows(), self._params)):
            if shadow.device != p.device:
                shadow = shadow.to(p.device)
                setattr(self, f"shadow_{index}", shadow)
            shadow.lerp_(p.detach().to(shadow.dtype), 1.0 - decay)

    @torch.no_grad()
    def copy_to(self) -> None:
        """Write the averaged values into the tracked parameters."""
        for shadow, p in zip(self._shadows(), self._params):
            p.copy_(shadow)

    @torch.no_grad()
    def store(self) -> None:
        """Keep a copy of the current (training) parameters for ``restore()``."""
        self._backup = [p.detach().clone() for p in self._params]

    @torch.no_grad()
    def restore(self) -> None:
        """Put back the parameters saved by ``store()``."""
        if self._backup is None:
            raise RuntimeError("EMA.restore() called without a previous store()")
        for saved, p in zip(self._backup, self._params):
            p.copy_(saved)
        self._backup = None

    @contextmanager
    def average_parameters(self) -> Iterator[None]:
        """Context in which the tracked parameters hold the EMA values; training values come back after."""
        self.store()
        self.copy_to()
        try:
            yield
        finally:
            self.restore()

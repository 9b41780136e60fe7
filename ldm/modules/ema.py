"""Exponential moving average of the trainable parameters of any set of modules.

``shadow = decay * shadow + (1 - decay) * param`` once per optimiser step, as one fused foreach lerp; with
warm-up the decay of the n-th update (n = 1, 2, ...) is ``min(decay, (1 + n) / (10 + n))``. The update
count is a host integer (reading a device counter would wait for the device). The shadows are buffers, so
the EMA checkpoints with ``state_dict`` and moves with ``.to()``; ``ddp_ignored_buffers`` names them for
DDP, which must not broadcast them before every forward.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator

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
        self.num_updates = 0
        self.swapped = False  # True while the tracked parameters hold the averages (see `swap`)
        for index, p in enumerate(params):
            self.register_buffer(f"shadow_{index}", p.detach().clone())

    def _shadows(self) -> list[torch.Tensor]:
        return [self._buffers[f"shadow_{index}"] for index in range(len(self._params))]

    def ddp_ignored_buffers(self, prefix: str) -> list[str]:
        """Fully qualified names of the shadows for DDP's ignore list, this module living at ``prefix``."""
        return [f"{prefix}.shadow_{index}" for index in range(len(self._params))]

    def current_decay(self) -> float:
        """Decay the next ``update()`` will use."""
        n = self.num_updates + 1
        return min(self.decay, (1 + n) / (10 + n)) if self.use_warmup else self.decay

    @torch.no_grad()
    def update(self) -> None:
        """Move every shadow towards its parameter (call once after each optimiser step)."""
        if self.swapped:
            raise RuntimeError("EMA.update() while the averages are swapped into the model")
        weight = 1.0 - self.current_decay()
        self.num_updates += 1
        torch._foreach_lerp_(self._shadows(), self._params, weight)

    @torch.no_grad()
    def copy_to(self) -> None:
        """Write the averaged values into the tracked parameters (for good: inference)."""
        torch._foreach_copy_(self._params, self._shadows())

    @torch.no_grad()
    def swap(self) -> None:
        """Exchange the tracked parameters and the averages in place, one tensor of scratch at a time."""
        for shadow, p in zip(self._shadows(), self._params):
            scratch = p.detach().clone()
            p.copy_(shadow)
            shadow.copy_(scratch)
        self.swapped = not self.swapped

    @contextmanager
    def average_parameters(self) -> Iterator[None]:
        """Context in which the tracked parameters hold the EMA values; training values come back after.

        Nested use is a no-op, so a sampling call inside a validation run swaps nothing more.
        """
        if self.swapped:
            yield
            return
        self.swap()
        try:
            yield
        finally:
            self.swap()

    def get_extra_state(self) -> dict[str, Any]:
        return {"num_updates": self.num_updates}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.num_updates = int(state["num_updates"])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before the count moved to the host keep it as a buffer
        legacy = state_dict.pop(prefix + "num_updates", None)
        if legacy is not None and prefix + "_extra_state" not in state_dict:
            state_dict[prefix + "_extra_state"] = {"num_updates": int(legacy)}
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

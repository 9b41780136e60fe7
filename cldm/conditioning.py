"""Condition dropout for classifier-free guidance."""
from __future__ import annotations

import torch


def drop_conditions(cond: dict[str, torch.Tensor], null_cond: dict[str, torch.Tensor], p_uncond: float,
                    generator: torch.Generator | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Replace each sample's condition by the null condition with probability `p_uncond`.

    `cond` and `null_cond` hold the same keys with tensors of equal shape [B, ...]. Returns the mixed
    dict and the boolean drop mask [B] (drawn on the generator's device, or the condition's).
    """
    if not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond must be in [0, 1], got {p_uncond}")
    if set(cond) != set(null_cond):
        raise ValueError(f"cond and null_cond must have the same keys, got {sorted(cond)} and {sorted(null_cond)}")
    first = next(iter(cond.values()))
    device = generator.device if generator is not None else first.device
    drop = (torch.rand(first.shape[0], generator=generator, device=device) < p_uncond).to(first.device)
    mixed = {}
    for key, value in cond.items():
        mask = drop.view(-1, *([1] * (value.ndim - 1)))
        mixed[key] = torch.where(mask, null_cond[key].to(value.dtype), value)
    return mixed, drop

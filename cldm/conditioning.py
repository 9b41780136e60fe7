"""Condition dropout for classifier-free guidance and per-timestep-bucket loss logging."""
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


def bucket_names(num_timesteps: int, num_buckets: int) -> list[str]:
    """Names `loss_t{lo}-{hi}` of `num_buckets` equal timestep ranges covering [0, T-1]."""
    edges = bucket_edges(num_timesteps, num_buckets)
    return [f"loss_t{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])]


def bucket_edges(num_timesteps: int, num_buckets: int) -> list[int]:
    if not 1 <= num_buckets <= num_timesteps:
        raise ValueError(f"num_buckets must be in [1, {num_timesteps}], got {num_buckets}")
    return [round(i * num_timesteps / num_buckets) for i in range(num_buckets + 1)]


def timestep_bucket_losses(per_sample_loss: torch.Tensor, t: torch.Tensor, num_timesteps: int,
                           num_buckets: int) -> dict[str, torch.Tensor]:
    """Mean loss of the samples whose timestep falls in each bucket (buckets without samples left out)."""
    edges = bucket_edges(num_timesteps, num_buckets)
    losses = {}
    for name, lo, hi in zip(bucket_names(num_timesteps, num_buckets), edges[:-1], edges[1:]):
        inside = (t >= lo) & (t < hi)
        if inside.any():
            losses[name] = per_sample_loss[inside].mean()
    return losses

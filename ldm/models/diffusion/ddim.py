"""DDIM sampler (Song et al., 2021) with classifier-free guidance, for eps- or v-predicting models.

``model_fn(x, t, cond_dict) -> model output`` is any callable; ``cond`` and ``uncond`` are dicts of
batched tensors (or lists of tensors). With guidance they are concatenated along the batch and the
model runs once per step on the doubled batch.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch
from tqdm.auto import tqdm

from ldm.models.diffusion.schedule import NoiseSchedule, check_parameterization

ModelFn = Callable[[torch.Tensor, torch.Tensor, dict], torch.Tensor]


def make_ddim_timesteps(num_timesteps: int, steps: int) -> torch.Tensor:
    """LDM's uniform DDIM timesteps: ``range(0, T, T // steps) + 1`` (ascending, int64).

    E.g. T=1000, steps=10 -> [1, 101, ..., 901]. When ``steps`` does not divide T there can be a few
    more timesteps than ``steps`` (as in LDM). A last timestep equal to T (when T // steps divides
    T - 1, e.g. steps=3 for T=1000) would index past the schedule and is dropped, where LDM fails.
    """
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"DDIM steps must be in [1, {num_timesteps}] for T={num_timesteps}, got {steps}")
    timesteps = torch.arange(0, num_timesteps, num_timesteps // steps, dtype=torch.long) + 1
    return timesteps[timesteps < num_timesteps]


def concat_conditions(first: Mapping, second: Mapping) -> dict:
    """Concatenate two condition dicts along the batch (tensors, or lists/tuples of tensors, per key)."""
    if set(first) != set(second):
        raise ValueError(f"cond and uncond must have the same keys, got {sorted(first)} and {sorted(second)}")
    return {key: _concat_value(key, first[key], second[key]) for key in first}


def _concat_value(key, a, b):
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.cat([a, b], dim=0)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return [_concat_value(key, x, y) for x, y in zip(a, b)]
    if a is None and b is None:
        return None
    raise ValueError(
        f"cannot batch condition {key!r}: expected tensors or equal-length lists of tensors, "
        f"got {type(a).__name__} and {type(b).__name__}"
    )


def _first_tensor(value) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, (list, tuple)) else ()
    for item in items:
        found = _first_tensor(item)
        if found is not None:
            return found
    return None


class DDIMSampler:
    """Deterministic (eta=0) or stochastic DDIM over a ``NoiseSchedule``."""

    def __init__(self, schedule: NoiseSchedule, parameterization: str = "eps"):
        check_parameterization(parameterization)
        self.schedule = schedule
        self.parameterization = parameterization

    def coefficients(self, steps: int, eta: float) -> tuple[torch.Tensor, ...]:
        """``(timesteps, abar_t, abar_prev, sigma_t)`` per DDIM step (ascending order, float64).

        ``sigma_t = eta * sqrt((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev))``;
        ``abar_prev`` of the first timestep is ``abar_0`` (as in LDM).
        """
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        timesteps = make_ddim_timesteps(self.schedule.num_timesteps, steps)
        abar = self.schedule.alphas_cumprod
        a_t = abar[timesteps]
        a_prev = torch.cat([abar[:1], abar[timesteps[:-1]]])
        sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
        return timesteps, a_t, a_prev, sigma

    def guided_output(
        self,
        model_fn: ModelFn,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: dict,
        uncond: dict | None,
        guidance_scale: float,
    ) -> torch.Tensor:
        """Model output with classifier-free guidance ``out_u + g * (out_c - out_u)``, one forward.

        Guidance on the raw output equals guidance on eps (and on x0): both are linear in it at fixed x_t, t.
        """
        if guidance_scale == 1.0:
            return model_fn(x, t, cond)
        if uncond is None:
            raise ValueError(f"guidance_scale={guidance_scale} needs an unconditional input (uncond), got None")
        out = model_fn(torch.cat([x, x]), torch.cat([t, t]), concat_conditions(uncond, cond))
        out_u, out_c = out.chunk(2, dim=0)
        return out_u + guidance_scale * (out_c - out_u)

    @torch.no_grad()
    def sample(
        self,
        model_fn: ModelFn,
        shape: tuple[int, ...],
        cond: dict,
        uncond: dict | None = None,
        steps: int = 50,
        eta: float = 0.0,
        guidance_scale: float = 1.0,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        progress: bool = True,
        x_T: torch.Tensor | None = None,
        clip_x0: float | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Run DDIM from noise ``x_T`` (drawn from ``generator`` if not given) and return x_0 [shape].

        ``generator`` may be one generator or one per batch item; with one per item, item i's noise (start
        and eta > 0 steps) comes from its own generator, so results do not depend on the batch makeup.

        The device is ``device``, else that of ``x_T``, else that of the first tensor in ``cond``, else CPU.
        Noise is drawn on the generator's device and moved. ``clip_x0`` clamps the predicted x0 to
        ``[-clip_x0, clip_x0]`` (eps is re-derived from the clamped x0).
        """
        shape = tuple(shape)
        if device is None:
            ref = x_T if x_T is not None else _first_tensor(cond)
            device = ref.device if ref is not None else torch.device("cpu")
        if x_T is not None:
            if tuple(x_T.shape) != shape:
                raise ValueError(f"x_T has shape {tuple(x_T.shape)}, expected {shape}")
            x = x_T.to(device=device, dtype=torch.float32)
        else:
            x = self._randn(shape, generator, device)
        timesteps, a_t, a_prev, sigma = self.coefficients(steps, eta)
        for i in tqdm(range(len(timesteps) - 1, -1, -1), desc="DDIM", disable=not progress):
            t = torch.full((shape[0],), int(timesteps[i]), device=device, dtype=torch.long)
            out = self.guided_output(model_fn, x, t, cond, uncond, guidance_scale)
            x0, eps = self.schedule.predict_x0_eps(x, t, out.to(x.dtype), self.parameterization)
            if clip_x0 is not None:
                x0 = x0.clamp(-clip_x0, clip_x0)
                eps = (x - a_t[i].sqrt().item() * x0) / (1 - a_t[i]).sqrt().item()
            direction = (1 - a_prev[i] - sigma[i] ** 2).sqrt().item()
            x = a_prev[i].sqrt().item() * x0 + direction * eps
            if sigma[i] > 0:
                x = x + sigma[i].item() * self._randn(shape, generator, device)
        return x

    @staticmethod
    def _randn(shape: tuple[int, ...], generator: torch.Generator | Sequence[torch.Generator] | None,
               device) -> torch.Tensor:
        if isinstance(generator, (list, tuple)):
            if len(generator) != shape[0]:
                raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]}")
            return torch.cat([torch.randn((1, *shape[1:]), generator=g, device=g.device).to(device)
                              for g in generator])
        gen_device = generator.device if generator is not None else device
        return torch.randn(shape, generator=generator, device=gen_device).to(device)

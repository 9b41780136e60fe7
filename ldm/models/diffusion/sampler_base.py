"""What every sampler shares: timestep spacing, the classifier-free-guided model call, start noise drawn from
one generator per batch item, the device, and the (x0, eps) estimate of each step.

``model_fn(x, t, cond_dict) -> model output`` (eps or v) is any callable; ``cond`` and ``uncond`` are dicts of
batched tensors (or lists of tensors). With guidance they are concatenated along the batch and the model runs
once per step on the doubled batch. A sampler subclass implements ``_solve``: the update from one noise level
to the next, given a function that returns the (guided, optionally clipped) x0 and eps at a timestep.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import torch

from ldm.models.diffusion.schedule import NoiseSchedule, check_parameterization

ModelFn = Callable[[torch.Tensor, torch.Tensor, dict], torch.Tensor]
Generators = torch.Generator | Sequence[torch.Generator] | None
Denoiser = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]


SPACINGS = ("uniform", "log-snr")
LOG_SNR_FLOOR = -5.0  # log(alpha / sigma): the signal is 0.7% of the noise; noisier timesteps are not worth a step


def log_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """``lambda = log(alpha / sigma) = 0.5 * log(abar / (1 - abar))``, elementwise (decreasing in t)."""
    return 0.5 * (alphas_cumprod.log() - (1 - alphas_cumprod).log())


def spaced_timesteps(alphas_cumprod: torch.Tensor, steps: int, spacing: str = "uniform") -> torch.Tensor:
    """The model evaluation timesteps of a ``steps``-step run over a schedule of T = len(alphas_cumprod) steps
    (ascending, int64, unique).

    ``uniform``: LDM's DDIM timesteps ``range(0, T, T // steps) + 1``; e.g. T=1000, steps=10 -> [1, 101, ...,
    901]. When ``steps`` does not divide T there can be a few more timesteps than ``steps`` (as in LDM: 16 for
    15). A last timestep equal to T (when T // steps divides T - 1, e.g. steps=3 for T=1000) would index past
    the schedule and is dropped, where LDM fails.
    ``log-snr``: ``steps`` timesteps from T-1 down to 1, uniform in ``lambda = log(alpha / sigma)`` (the
    "logSNR" spacing of DPM-Solver), each the nearest timestep of the schedule (duplicates merged). The grid
    starts at ``max(lambda(T-1), LOG_SNR_FLOOR)``: a schedule that ends in pure noise (the cosine one reaches
    lambda = -10) would otherwise spend steps where the signal is below 1% of the noise.
    """
    num_timesteps = len(alphas_cumprod)
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"sampling steps must be in [1, {num_timesteps}] for T={num_timesteps}, got {steps}")
    if spacing == "uniform":
        timesteps = torch.arange(0, num_timesteps, num_timesteps // steps, dtype=torch.long) + 1
        return timesteps[timesteps < num_timesteps]
    if spacing == "log-snr":
        lam = log_snr(alphas_cumprod.detach().double().cpu())[1:]  # timesteps 1 .. T-1
        wanted = torch.linspace(max(lam[-1].item(), LOG_SNR_FLOOR), lam[0].item(), steps, dtype=torch.float64)
        return torch.unique((lam[None, :] - wanted[:, None]).abs().argmin(dim=1) + 1)
    raise ValueError(f"timestep spacing must be one of {SPACINGS}, got {spacing!r}")


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


def draw_noise(shape: tuple[int, ...], generator: Generators, device) -> torch.Tensor:
    """Standard normal noise [shape] on ``device``, drawn on the generator's device.

    With one generator per batch item, item i's noise comes from generator i alone, so it does not depend on
    the other items of the batch.
    """
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]}")
        return torch.cat([torch.randn((1, *shape[1:]), generator=g, device=g.device).to(device)
                          for g in generator])
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device).to(device)


class Sampler:
    """Base of the samplers over a ``NoiseSchedule``: sets up the start noise and the per-step denoiser."""

    name = ""
    default_steps = 50
    default_spacing = "uniform"

    def __init__(self, schedule: NoiseSchedule, parameterization: str = "eps", spacing: str | None = None):
        check_parameterization(parameterization)
        spacing = self.default_spacing if spacing is None else spacing
        if spacing not in SPACINGS:
            raise ValueError(f"timestep spacing must be one of {SPACINGS}, got {spacing!r}")
        self.schedule = schedule
        self.parameterization = parameterization
        self.spacing = spacing

    def alphas_cumprod(self) -> torch.Tensor:
        """The schedule's cumulative alphas [T] as a float64 CPU table (coefficients are built per call)."""
        return self.schedule.alphas_cumprod.detach().double().cpu()

    def timesteps(self, steps: int) -> torch.Tensor:
        """The model evaluation timesteps of a ``steps``-step run (ascending), spaced by ``self.spacing``."""
        return spaced_timesteps(self.schedule.alphas_cumprod, steps, self.spacing)

    def guided_output(self, model_fn: ModelFn, x: torch.Tensor, t: torch.Tensor, cond: dict, uncond: dict | None,
                      guidance_scale: float) -> torch.Tensor:
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
        steps: int | None = None,
        eta: float = 0.0,
        guidance_scale: float = 1.0,
        generator: Generators = None,
        progress: bool = True,
        x_T: torch.Tensor | None = None,
        clip_x0: float | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Sample from noise ``x_T`` (drawn from ``generator`` if not given) and return x_0 [shape].

        ``steps`` defaults to the sampler's ``default_steps``. ``generator`` may be one generator or one per
        batch item; with one per item, item i's noise (start, and DDIM's eta > 0 steps) comes from its own
        generator, so results do not depend on the batch makeup. The device is ``device``, else that of
        ``x_T``, else that of the first tensor in ``cond``, else CPU. ``clip_x0`` clamps the predicted x0 to
        ``[-clip_x0, clip_x0]`` (eps is re-derived from the clamped x0).
        """
        steps = self.default_steps if steps is None else int(steps)
        self.check_eta(eta)
        shape = tuple(shape)
        if device is None:
            ref = x_T if x_T is not None else _first_tensor(cond)
            device = ref.device if ref is not None else torch.device("cpu")
        if x_T is not None:
            if tuple(x_T.shape) != shape:
                raise ValueError(f"x_T has shape {tuple(x_T.shape)}, expected {shape}")
            x = x_T.to(device=device, dtype=torch.float32)
        else:
            x = draw_noise(shape, generator, device)
        abar = self.alphas_cumprod()

        def denoise(x_t: torch.Tensor, timestep: int) -> tuple[torch.Tensor, torch.Tensor]:
            t = torch.full((shape[0],), timestep, device=device, dtype=torch.long)
            out = self.guided_output(model_fn, x_t, t, cond, uncond, guidance_scale)
            x0, eps = self.schedule.predict_x0_eps(x_t, t, out.to(x_t.dtype), self.parameterization)
            if clip_x0 is not None:
                a_t = abar[timestep].item()
                x0 = x0.clamp(-clip_x0, clip_x0)
                eps = (x_t - a_t**0.5 * x0) / (1 - a_t) ** 0.5
            return x0, eps

        return self._solve(x, denoise, steps, eta, generator, progress)

    @classmethod
    def check_eta(cls, eta: float) -> None:
        """Refuse an ``eta`` the sampler does not support (only DDIM takes eta > 0)."""
        if eta != 0:
            raise ValueError(f"eta={eta}: the {cls.name} sampler is deterministic (eta must be 0); "
                             f"eta > 0 needs the ddim sampler")

    def _solve(self, x: torch.Tensor, denoise: Denoiser, steps: int, eta: float, generator: Generators,
               progress: bool) -> torch.Tensor:
        raise NotImplementedError

"""Discrete-time Gaussian noise schedule: betas, cumulative alphas, forward noising and conversions.

``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` (Ho et al., 2020); ``v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0``
(Salimans & Ho, 2022). ``betas`` and ``alphas_cumprod`` stay float64 on the CPU for samplers that derive
per-call coefficients; the tables the training step gathers from are float32 buffers that move with the
module, so a lookup is one gather on the timesteps' device (no copy to the host, no wait).
"""

from __future__ import annotations

import math

import torch
from torch import nn

PARAMETERIZATIONS = ("eps", "v")


def linear_betas(num_timesteps: int, linear_start: float, linear_end: float) -> torch.Tensor:
    """LDM's "linear" schedule: betas linear in sqrt space, then squared."""
    return torch.linspace(linear_start**0.5, linear_end**0.5, num_timesteps, dtype=torch.float64) ** 2


def cosine_betas(num_timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal (2021): ``abar(t) = cos^2(((t/T + s) / (1 + s)) * pi/2)``, betas clipped at ``max_beta``."""
    steps = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
    abar = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    return torch.clamp(1 - abar[1:] / abar[:-1], max=max_beta)


def check_parameterization(parameterization: str) -> None:
    if parameterization not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {parameterization!r}")


class NoiseSchedule(nn.Module):
    """Noise schedule of ``num_timesteps`` steps, ``kind`` "linear" (LDM) or "cosine" (improved DDPM)."""

    def __init__(
        self,
        kind: str = "linear",
        num_timesteps: int = 1000,
        linear_start: float = 0.00085,
        linear_end: float = 0.012,
    ):
        super().__init__()
        if num_timesteps < 2:
            raise ValueError(f"num_timesteps must be >= 2, got {num_timesteps}")
        if kind == "linear":
            if not 0 < linear_start < linear_end < 1:
                raise ValueError(f"need 0 < linear_start < linear_end < 1, got {linear_start}, {linear_end}")
            betas = linear_betas(num_timesteps, linear_start, linear_end)
        elif kind == "cosine":
            betas = cosine_betas(num_timesteps)
        else:
            raise ValueError(f"schedule kind must be 'linear' or 'cosine', got {kind!r}")
        self.kind = kind
        self.num_timesteps = num_timesteps
        self.betas = betas
        self.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        tables = {"sqrt_alphas_cumprod": self.alphas_cumprod.sqrt(),
                  "sqrt_one_minus_alphas_cumprod": (1.0 - self.alphas_cumprod).sqrt()}
        for name, table in tables.items():
            self.register_buffer(name, table.float(), persistent=False)

    def gather(self, table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``table[t]`` shaped [B, 1, ..., 1] to broadcast against ``like``, in its dtype.

        ``t`` holds integer timesteps in [0, T-1] on the table's device (the range is not checked: that
        would wait for the device); out-of-range values fail in the indexing itself.
        """
        t = torch.as_tensor(t)
        if t.ndim != 1 or t.shape[0] != like.shape[0]:
            raise ValueError(f"timesteps must have shape [{like.shape[0]}], got {tuple(t.shape)}")
        values = table.to(t.device)[t.long()].to(dtype=like.dtype)
        return values.view(-1, *([1] * (like.ndim - 1)))

    def sample_timesteps(self, batch: int, device: torch.device | str = "cpu", generator=None) -> torch.Tensor:
        """Uniform random training timesteps [batch] in [0, T-1] (drawn on the generator's device)."""
        gen_device = generator.device if generator is not None else device
        return torch.randint(0, self.num_timesteps, (batch,), generator=generator, device=gen_device).to(device)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Noised sample ``x_t = sqrt(abar_t) x0 + sqrt(1-abar_t) noise``."""
        return self.gather(self.sqrt_alphas_cumprod, t, x0) * x0 + self.gather(
            self.sqrt_one_minus_alphas_cumprod, t, x0
        ) * noise

    def v_target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Velocity ``v = sqrt(abar_t) noise - sqrt(1-abar_t) x0``."""
        return self.gather(self.sqrt_alphas_cumprod, t, x0) * noise - self.gather(
            self.sqrt_one_minus_alphas_cumprod, t, x0
        ) * x0

    def training_target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, parameterization: str):
        """What the model regresses: ``noise`` for "eps", ``v_target`` for "v"."""
        check_parameterization(parameterization)
        return noise if parameterization == "eps" else self.v_target(x0, noise, t)

    def predict_x0_eps(
        self, x_t: torch.Tensor, t: torch.Tensor, model_out: torch.Tensor, parameterization: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0, eps)`` implied by the model output at ``(x_t, t)``.

        eps: ``x0 = (x_t - sqrt(1-abar) eps) / sqrt(abar)``;
        v:   ``x0 = sqrt(abar) x_t - sqrt(1-abar) v``, ``eps = sqrt(1-abar) x_t + sqrt(abar) v``.
        """
        check_parameterization(parameterization)
        a = self.gather(self.sqrt_alphas_cumprod, t, x_t)
        s = self.gather(self.sqrt_one_minus_alphas_cumprod, t, x_t)
        if parameterization == "eps":
            return (x_t - s * model_out) / a, model_out
        return a * x_t - s * model_out, s * x_t + a * model_out

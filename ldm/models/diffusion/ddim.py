"""DDIM sampler (Song et al., 2021) with classifier-free guidance, for eps- or v-predicting models."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ldm.models.diffusion.sampler_base import Denoiser, Generators, Sampler, draw_noise


class DDIMSampler(Sampler):
    """Deterministic (eta=0) or stochastic DDIM over a ``NoiseSchedule``."""

    name = "ddim"
    default_steps = 50

    def coefficients(self, steps: int, eta: float) -> tuple[torch.Tensor, ...]:
        """``(timesteps, abar_t, abar_prev, sigma_t)`` per DDIM step (ascending order, float64).

        ``sigma_t = eta * sqrt((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev))``;
        ``abar_prev`` of the first timestep is ``abar_0`` (as in LDM).
        """
        self.check_eta(eta)
        timesteps = self.timesteps(steps)
        abar = self.alphas_cumprod()
        a_t = abar[timesteps]
        a_prev = torch.cat([abar[:1], abar[timesteps[:-1]]])
        sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
        return timesteps, a_t, a_prev, sigma

    @classmethod
    def check_eta(cls, eta: float) -> None:
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")

    def _solve(self, x: torch.Tensor, denoise: Denoiser, steps: int, eta: float, generator: Generators,
               progress: bool) -> torch.Tensor:
        timesteps, a_t, a_prev, sigma = self.coefficients(steps, eta)
        for i in tqdm(range(len(timesteps) - 1, -1, -1), desc="DDIM", disable=not progress):
            x0, eps = denoise(x, int(timesteps[i]))
            direction = (1 - a_prev[i] - sigma[i] ** 2).sqrt().item()
            x = a_prev[i].sqrt().item() * x0 + direction * eps
            if sigma[i] > 0:
                x = x + sigma[i].item() * draw_noise(tuple(x.shape), generator, x.device)
        return x

"""DPM-Solver++(2M) (Lu et al., 2022, "DPM-Solver++", Algorithm 2): a second-order multistep solver of the
diffusion ODE in its data-prediction (x0) form, with classifier-free guidance, for eps- or v-predicting models.

With ``alpha_t = sqrt(abar_t)``, ``sigma_t = sqrt(1 - abar_t)``, ``lambda_t = log(alpha_t / sigma_t)`` and the
step ``h_i = lambda_{t_{i+1}} - lambda_{t_i}`` from evaluation timestep t_i to the next (less noisy) one:

    x_{t_{i+1}} = (sigma_{t_{i+1}} / sigma_{t_i}) x_{t_i} - alpha_{t_{i+1}} (exp(-h_i) - 1) D_i
    D_0 = x0_0,   D_i = (1 + 1 / (2 r_i)) x0_i - 1 / (2 r_i) x0_{i-1},   r_i = h_{i-1} / h_i

where x0_i is the model's (guided) x0 estimate at t_i. The timesteps are by default uniform in lambda from
T-1 (or lambda = -5 at most) down to 1 (``spaced_timesteps(..., "log-snr")``): DDIM's uniform-in-t spacing
makes the last steps much longer in lambda than the ones before, and the multistep extrapolation over such a
jump overshoots. As in DDIM, the last step ends at the schedule's first noise level abar_0, so both samplers
aim at the same distribution; one model evaluation is spent per timestep.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ldm.models.diffusion.sampler_base import Denoiser, Generators, Sampler, log_snr


class DPMSolverPP2MSampler(Sampler):
    """Deterministic DPM-Solver++(2M) over a ``NoiseSchedule`` (no eta)."""

    name = "dpmpp-2m"
    default_steps = 15
    default_spacing = "log-snr"

    def coefficients(self, steps: int) -> tuple[torch.Tensor, ...]:
        """``(timesteps, x_scale, d_scale, history_weight)`` per step in sampling order (descending t, float64).

        Step i: ``x <- x_scale[i] * x + d_scale[i] * D_i`` with
        ``D_i = (1 + history_weight[i]) x0_i - history_weight[i] x0_{i-1}``; ``history_weight[0] = 0``
        (the first step is first order, i.e. a DDIM step).
        """
        timesteps = self.timesteps(steps).flip(0)
        abar = self.alphas_cumprod()
        a_now = abar[timesteps]
        a_next = torch.cat([a_now[1:], abar[:1]])
        h = log_snr(a_next) - log_snr(a_now)
        x_scale = ((1 - a_next) / (1 - a_now)).sqrt()
        d_scale = -a_next.sqrt() * torch.expm1(-h)
        history_weight = torch.zeros_like(h)
        history_weight[1:] = h[1:] / (2 * h[:-1])  # 1 / (2 r_i), r_i = h_{i-1} / h_i
        return timesteps, x_scale, d_scale, history_weight

    def _solve(self, x: torch.Tensor, denoise: Denoiser, steps: int, eta: float, generator: Generators,
               progress: bool) -> torch.Tensor:
        timesteps, x_scale, d_scale, history_weight = self.coefficients(steps)
        previous_x0 = None
        for i in tqdm(range(len(timesteps)), desc="DPM-Solver++(2M)", disable=not progress):
            x0, _ = denoise(x, int(timesteps[i]))
            weight = history_weight[i].item()
            d = x0 if previous_x0 is None else (1 + weight) * x0 - weight * previous_x0
            x = x_scale[i].item() * x + d_scale[i].item() * d
            previous_x0 = x0
        return x

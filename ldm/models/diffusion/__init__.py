"""Noise schedule and DDIM sampler of the latent diffusion model."""
from ldm.models.diffusion.ddim import DDIMSampler, make_ddim_timesteps
from ldm.models.diffusion.schedule import NoiseSchedule

__all__ = ["DDIMSampler", "NoiseSchedule", "make_ddim_timesteps"]

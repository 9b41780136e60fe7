"""Noise schedule and samplers (DDIM, DPM-Solver++(2M)) of the latent diffusion model."""
from ldm.models.diffusion.ddim import DDIMSampler
from ldm.models.diffusion.dpm_solver import DPMSolverPP2MSampler
from ldm.models.diffusion.sampler_base import Sampler, spaced_timesteps
from ldm.models.diffusion.samplers import DEFAULT_SAMPLER, SAMPLER_NAMES, default_steps, make_sampler
from ldm.models.diffusion.schedule import NoiseSchedule

__all__ = ["DDIMSampler", "DPMSolverPP2MSampler", "NoiseSchedule", "Sampler", "spaced_timesteps", "DEFAULT_SAMPLER",
           "SAMPLER_NAMES", "default_steps", "make_sampler"]

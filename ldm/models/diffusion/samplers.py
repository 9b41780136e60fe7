"""The samplers by name: ``ddim`` and ``dpmpp-2m`` (the default: same quality in fewer steps, see README)."""

from __future__ import annotations

from ldm.models.diffusion.ddim import DDIMSampler
from ldm.models.diffusion.dpm_solver import DPMSolverPP2MSampler
from ldm.models.diffusion.sampler_base import Sampler
from ldm.models.diffusion.schedule import NoiseSchedule

SAMPLERS: dict[str, type[Sampler]] = {cls.name: cls for cls in (DDIMSampler, DPMSolverPP2MSampler)}
SAMPLER_NAMES = tuple(SAMPLERS)
DEFAULT_SAMPLER = "dpmpp-2m"


def sampler_class(name: str) -> type[Sampler]:
    """The sampler class called ``name``; an unknown name is an error listing the known ones."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLER_NAMES)}")
    return SAMPLERS[name]


def make_sampler(name: str, schedule: NoiseSchedule, parameterization: str = "eps") -> Sampler:
    """A sampler of ``schedule`` for an eps- or v-predicting model."""
    return sampler_class(name)(schedule, parameterization)


def default_steps(name: str) -> int:
    """The step count a sampler uses when none is given (ddim 50, dpmpp-2m 15)."""
    return sampler_class(name).default_steps

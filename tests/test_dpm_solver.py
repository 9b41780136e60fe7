"""DPM-Solver++(2M) beside DDIM: timesteps, the update written out by hand, exact answers on Gaussian data,
guidance, per-item seeding, and agreement with a long DDIM run on a trained tiny model."""
import math

import pytest
import torch
import torch.nn.functional as F

from ldm.models.diffusion import (DDIMSampler, DPMSolverPP2MSampler, NoiseSchedule, default_steps, make_sampler,
                                  spaced_timesteps)
from stand_ins import LinearModel

SCHEDULE = NoiseSchedule("linear", 1000, 0.00085, 0.012)


def lam(t: int) -> float:
    a = SCHEDULE.alphas_cumprod[t].item()
    return 0.5 * math.log(a / (1 - a))


def test_log_snr_timesteps_are_uniform_in_lambda_from_999_to_1():
    ts = spaced_timesteps(SCHEDULE.alphas_cumprod, 10, "log-snr").tolist()
    assert ts == [1, 6, 24, 77, 195, 376, 572, 742, 882, 999]  # golden: nearest timesteps to the lambda grid
    wanted = [lam(999) + k * (lam(1) - lam(999)) / 9 for k in range(10)]
    for t, w in zip(ts, reversed(wanted)):
        neighbours = [abs(lam(u) - w) for u in (t - 1, t, t + 1) if 1 <= u <= 999]
        assert abs(lam(t) - w) == min(neighbours)  # the nearest timestep of the schedule
    assert DPMSolverPP2MSampler(SCHEDULE).timesteps(15).tolist() == spaced_timesteps(
        SCHEDULE.alphas_cumprod, 15, "log-snr").tolist()
    with pytest.raises(ValueError, match="spacing"):
        spaced_timesteps(SCHEDULE.alphas_cumprod, 10, "quadratic")
    cosine = NoiseSchedule("cosine").alphas_cumprod  # lambda(999) = -9.9: the grid starts at lambda = -5
    ts = spaced_timesteps(cosine, 15, "log-snr")
    lam_cosine = 0.5 * (cosine / (1 - cosine)).log()
    assert len(ts) == 15 and ts[0] == 1 and lam_cosine[ts[-1]].item() == pytest.approx(-5.0, abs=0.1)  # nearest t


def hand_dpmpp_2m(model, x, cond, timesteps_desc, parameterization):
    """Lu et al. (2022), Algorithm 2, written out with floats; the last step ends at abar_0."""
    abar = [SCHEDULE.alphas_cumprod[t].item() for t in timesteps_desc] + [SCHEDULE.alphas_cumprod[0].item()]
    lams = [0.5 * math.log(a / (1 - a)) for a in abar]
    previous, h_previous = None, None
    for i, t in enumerate(timesteps_desc):
        a, a_next = abar[i], abar[i + 1]
        out = model(x, torch.full((x.shape[0],), t), cond)
        x0 = (x - math.sqrt(1 - a) * out) / math.sqrt(a) if parameterization == "eps" else \
            math.sqrt(a) * x - math.sqrt(1 - a) * out
        h = lams[i + 1] - lams[i]
        if previous is None:
            d = x0
        else:
            r = h_previous / h
            d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * previous
        x = math.sqrt(1 - a_next) / math.sqrt(1 - a) * x - math.sqrt(a_next) * (math.exp(-h) - 1) * d
        previous, h_previous = x0, h
    return x


@pytest.mark.parametrize("parameterization", ["eps", "v"])
def test_update_matches_the_paper_written_out(parameterization):
    torch.manual_seed(0)
    sampler = DPMSolverPP2MSampler(SCHEDULE, parameterization)
    x_T, cond = torch.randn(2, 2, 4, 4), {"ctx": torch.randn(2, 2, 4, 4)}
    out = sampler.sample(LinearModel(), x_T.shape, cond, steps=6, progress=False, x_T=x_T)
    timesteps = sampler.timesteps(6).flip(0).tolist()
    expected = hand_dpmpp_2m(LinearModel(), x_T.clone(), cond, timesteps, parameterization)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    model = LinearModel()
    sampler.sample(model, x_T.shape, cond, steps=6, progress=False, x_T=x_T)
    assert model.calls == [2] * 6  # one model evaluation per timestep


class GaussianDenoiser:
    """The exact model for data x0 ~ N(mu, s^2) per element, returned as eps or v:
    E[x0 | x_t] = mu + a s^2 / (a^2 s^2 + sigma^2) (x_t - a mu), a = sqrt(abar_t), sigma = sqrt(1 - abar_t).
    `mu` comes in with the condition."""

    def __init__(self, s: float, parameterization: str):
        self.s, self.parameterization = s, parameterization

    def __call__(self, x, t, cond):
        abar = SCHEDULE.alphas_cumprod[t].to(x.dtype).view(-1, 1, 1, 1)
        a, sigma, mu = abar.sqrt(), (1 - abar).sqrt(), cond["mu"]
        x0 = mu + a * self.s**2 / (a**2 * self.s**2 + sigma**2) * (x - a * mu)
        eps = (x - a * x0) / sigma
        return eps if self.parameterization == "eps" else a * eps - sigma * x0


def marginal(t: int, mu: float, s: float) -> tuple[float, float]:
    """Mean and standard deviation of x_t = a x0 + sigma eps for x0 ~ N(mu, s^2)."""
    a = SCHEDULE.alphas_cumprod[t].item()
    return math.sqrt(a) * mu, math.sqrt(a * s**2 + 1 - a)


def sample_gaussian(name: str, parameterization: str, steps: int, mu_cond: float, s: float, guidance: float = 1.0,
                    mu_uncond: float = 0.0, n: int = 256):
    """Samples from the start marginal at the sampler's first timestep, with the exact map they should follow.

    The probability-flow ODE of Gaussian data keeps (x_t - mean_t) / std_t fixed, so a start value z maps to
    mean_0 + std_0 z at the end (t = 0): the exact answer per sample, and N(mean_0, std_0^2) in distribution.
    With guidance g (equal variances) the guided model is the exact model of N(mu_u + g (mu_c - mu_u), s^2).
    """
    sampler = make_sampler(name, SCHEDULE, parameterization)
    z = torch.randn(n, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    mu = mu_uncond + guidance * (mu_cond - mu_uncond)
    mean_T, std_T = marginal(int(sampler.timesteps(steps)[-1]), mu, s)
    cond, uncond = {"mu": torch.full((n, 1, 1, 1), mu_cond)}, {"mu": torch.full((n, 1, 1, 1), mu_uncond)}
    out = sampler.sample(GaussianDenoiser(s, parameterization), z.shape, cond, uncond, steps=steps,
                         guidance_scale=guidance, x_T=mean_T + std_T * z, progress=False)
    mean_0, std_0 = marginal(0, mu, s)
    return out, mean_0 + std_0 * z, (mean_0, std_0)


# (sampler, steps): DDIM needs many steps to reach the right spread (measured std ratios for s = 0.5: 0.86 at
# 15 steps, 0.95 at 50, 0.994 at 500); DPM-Solver++(2M) is 0.8% wide at 15 steps (log-snr spacing)
@pytest.mark.parametrize("name,steps", [("ddim", 500), ("dpmpp-2m", 15)])
@pytest.mark.parametrize("parameterization", ["eps", "v"])
def test_samplers_reach_the_gaussian_data_distribution(name, steps, parameterization):
    out, exact, (mean, std) = sample_gaussian(name, parameterization, steps, mu_cond=0.5, s=0.5)
    # 16384 values: the sample mean's standard error is std/128 = 0.004, the std's relative one 0.6%
    assert abs(out.mean().item() - mean) < 0.02
    assert out.std().item() == pytest.approx(std, rel=0.025)
    assert (out - exact).abs().max().item() < 0.05  # each sample lands where the exact ODE map sends it


@pytest.mark.parametrize("parameterization", ["eps", "v"])
def test_fifteen_dpm_solver_steps_beat_fifty_ddim_steps_on_the_exact_map(parameterization):
    """The point of the solver: closer to the exact ODE solution in fewer model evaluations."""
    dpm, exact, _ = sample_gaussian("dpmpp-2m", parameterization, 15, mu_cond=0.5, s=0.5)
    ddim, exact_ddim, _ = sample_gaussian("ddim", parameterization, 50, mu_cond=0.5, s=0.5)
    assert (dpm - exact).abs().mean() < 0.25 * (ddim - exact_ddim).abs().mean()


@pytest.mark.parametrize("name,steps", [("ddim", 500), ("dpmpp-2m", 15)])
def test_guidance_reaches_the_guided_gaussian(name, steps):
    out, exact, (mean, std) = sample_gaussian(name, "v", steps, mu_cond=0.4, mu_uncond=-0.2, s=0.5, guidance=3.0)
    assert mean == pytest.approx(math.sqrt(SCHEDULE.alphas_cumprod[0].item()) * 1.6)  # -0.2 + 3 * 0.6
    assert abs(out.mean().item() - mean) < 0.02
    assert out.std().item() == pytest.approx(std, rel=0.025)


def test_per_item_generators_make_results_independent_of_the_batch():
    sampler = DPMSolverPP2MSampler(SCHEDULE, "eps")

    def run(seeds):
        cond = {"ctx": torch.zeros(len(seeds), 2, 4, 4)}
        return sampler.sample(LinearModel(), (len(seeds), 2, 4, 4), cond, steps=5, progress=False,
                              generator=[torch.Generator().manual_seed(s) for s in seeds])

    pair = run([3, 5])
    torch.testing.assert_close(pair[0], run([3])[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(pair[1], run([5, 9])[0], atol=1e-6, rtol=0)
    assert not torch.allclose(pair[0], pair[1])


def test_names_defaults_and_refusals():
    assert isinstance(make_sampler("ddim", SCHEDULE), DDIMSampler)
    assert isinstance(make_sampler("dpmpp-2m", SCHEDULE, "v"), DPMSolverPP2MSampler)
    assert default_steps("ddim") == 50 and default_steps("dpmpp-2m") == 15
    with pytest.raises(ValueError, match="unknown sampler 'euler'; choose one of ddim, dpmpp-2m"):
        make_sampler("euler", SCHEDULE)
    with pytest.raises(ValueError, match="eta=0.5: the dpmpp-2m sampler is deterministic"):
        make_sampler("dpmpp-2m", SCHEDULE).sample(LinearModel(), (1, 2, 4, 4), {"ctx": torch.zeros(1, 2, 4, 4)},
                                                  steps=3, eta=0.5, progress=False)


@pytest.fixture(scope="module")
def trained_tiny():
    """The tiny stage-2 config trained for 40 steps on four phantom eyes (a stand-in first stage for speed)."""
    from eyeoct.config import instantiate_from_config, load_config
    from eyeoct.data.datasets import PhantomDataset
    from script_helpers import REPO_ROOT
    from tests.test_train_dm import TINY_CONFIG, PooledFirstStage

    torch.manual_seed(0)
    dataset = PhantomDataset(start=0, num_cases=4, phantom={"cf_size": 32, "oct_height": 32, "oct_width": 32})
    batch = {k: torch.stack([dataset[i][k] for i in range(4)]) for k in ("cf", "oct")}
    overrides = ["model.params.first_stage_config.params.ddconfig.z_channels=6",
                 "model.params.unet_config.in_channels=6", "model.params.unet_config.out_channels=6",
                 "model.params.controlnet.enabled=false", "model.params.learning_rate=2e-3"]
    model = instantiate_from_config(load_config([REPO_ROOT / TINY_CONFIG], overrides).model)
    pooled = F.avg_pool2d(batch["oct"], 2)
    model.first_stage = PooledFirstStage(pooled.mean().item(), 1.0 / pooled.std().item())
    optimizer = model.configure_optimizers()["optimizer"]
    generator = torch.Generator().manual_seed(0)
    for _ in range(40):
        loss = model.diffusion_loss(batch, generator, sample_posterior=True)[0].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), batch["cf"]


def test_on_a_trained_model_dpm_solver_follows_a_long_ddim_run(trained_tiny):
    """Same start noise and guidance: 15 DPM-Solver++ steps land nearer a 100-step DDIM run than 15 DDIM steps."""
    model, cf = trained_tiny
    guidance = 3.0
    cond = model.encode_condition(cf)
    uncond = model.null_condition(cond)
    shape = (cf.shape[0], *model.latent_shape)
    x_T = torch.randn(shape, generator=torch.Generator().manual_seed(1))

    def run(name, steps, spacing=None):
        sampler = make_sampler(name, model.schedule, model.parameterization)
        if spacing:
            sampler.spacing = spacing
        return sampler.sample(model.apply_model, shape, cond, uncond, steps=steps, guidance_scale=guidance,
                              x_T=x_T, progress=False)

    with torch.no_grad():
        reference = run("ddim", 100, spacing="log-snr")  # all runs start at t = 999
        dpm, ddim = run("dpmpp-2m", 15), run("ddim", 15, spacing="log-snr")
    error_dpm = (dpm - reference).pow(2).mean().sqrt() / reference.std()
    error_ddim = (ddim - reference).pow(2).mean().sqrt() / reference.std()
    assert error_dpm < 0.5 * error_ddim, (error_dpm, error_ddim)  # measured 0.020 vs 0.070
    assert error_dpm < 0.05, error_dpm

    # ControlLDM.sample(sampler=...) runs the same solver and decodes
    generator = [torch.Generator().manual_seed(7 + i) for i in range(cf.shape[0])]
    volumes = model.sample(cf, steps=15, guidance_scale=guidance, generator=generator, sampler="dpmpp-2m",
                           use_ema=False)
    start = torch.cat([torch.randn((1, *shape[1:]), generator=torch.Generator().manual_seed(7 + i))
                       for i in range(cf.shape[0])])
    latents = make_sampler("dpmpp-2m", model.schedule, model.parameterization).sample(
        model.apply_model, shape, cond, uncond, steps=15, guidance_scale=guidance, x_T=start, progress=False)
    torch.testing.assert_close(volumes, model.decode_latent(latents))

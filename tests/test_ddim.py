"""Noise schedule and DDIM sampler: timesteps, formulas, guidance batching, determinism."""
import math

import pytest
import torch

from ldm.models.diffusion import DDIMSampler, NoiseSchedule, spaced_timesteps
from ldm.models.diffusion.sampler_base import concat_conditions


def test_ddim_timesteps_match_hand_computed():
    abar = NoiseSchedule().alphas_cumprod
    assert spaced_timesteps(abar, 10).tolist() == [1, 101, 201, 301, 401, 501, 601, 701, 801, 901]
    assert spaced_timesteps(abar, 50).tolist() == [1 + 20 * i for i in range(50)]
    assert spaced_timesteps(NoiseSchedule(num_timesteps=100).alphas_cumprod, 4).tolist() == [1, 26, 51, 76]
    assert spaced_timesteps(abar, 3).tolist() == [1, 334, 667]  # 1000 would be past the schedule
    assert spaced_timesteps(abar, 30).tolist() == [1 + 33 * i for i in range(31)]  # LDM: 31 for 30
    assert DDIMSampler(NoiseSchedule()).timesteps(10).tolist() == spaced_timesteps(abar, 10).tolist()
    with pytest.raises(ValueError, match="steps"):
        spaced_timesteps(abar, 1001)


def test_linear_schedule_values():
    sched = NoiseSchedule("linear", 1000, 0.00085, 0.012)
    assert sched.betas[0].item() == pytest.approx(0.00085, rel=1e-12)
    assert sched.betas[-1].item() == pytest.approx(0.012, rel=1e-12)
    mid = ((0.00085**0.5 + (0.012**0.5 - 0.00085**0.5) * 500 / 999)) ** 2
    assert sched.betas[500].item() == pytest.approx(mid, rel=1e-12)
    assert sched.alphas_cumprod[2].item() == pytest.approx(
        (1 - sched.betas[0].item()) * (1 - sched.betas[1].item()) * (1 - sched.betas[2].item()), rel=1e-12
    )


def test_cosine_schedule_values():
    sched = NoiseSchedule("cosine", 1000)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert sched.alphas_cumprod[0].item() == pytest.approx(f(1) / f(0), rel=1e-10)
    assert sched.alphas_cumprod[499].item() == pytest.approx(f(500) / f(0), rel=1e-9)
    assert sched.betas.max().item() == pytest.approx(0.999)
    with pytest.raises(ValueError, match="kind"):
        NoiseSchedule("quadratic")


def test_q_sample_and_v_round_trip():
    torch.manual_seed(0)
    sched = NoiseSchedule("linear", 1000)
    x0, noise = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    t = torch.tensor([0, 400, 999])
    abar = sched.alphas_cumprod[t].float().view(3, 1, 1, 1)
    x_t = sched.q_sample(x0, t, noise)
    torch.testing.assert_close(x_t, abar.sqrt() * x0 + (1 - abar).sqrt() * noise)
    v = sched.v_target(x0, noise, t)
    torch.testing.assert_close(v, abar.sqrt() * noise - (1 - abar).sqrt() * x0)
    x0_v, eps_v = sched.predict_x0_eps(x_t, t, v, "v")
    torch.testing.assert_close(x0_v, x0, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(eps_v, noise, rtol=1e-5, atol=1e-5)
    x0_e, eps_e = sched.predict_x0_eps(x_t, t, noise, "eps")
    torch.testing.assert_close(x0_e, x0, rtol=1e-4, atol=1e-4)
    assert eps_e is noise
    assert sched.training_target(x0, noise, t, "v") is not noise
    with pytest.raises(ValueError, match="parameterization"):
        sched.predict_x0_eps(x_t, t, noise, "x0")


class LinearModel:
    """A fixed model ``out = a * x + b * cond + c * t/1000`` that records how it was called."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, t, cond):
        self.calls.append(x.shape[0])
        return 0.9 * x + 0.3 * cond["ctx"] + 0.1 * (t.float() / 1000).view(-1, 1, 1, 1)


def test_guidance_one_is_the_conditional_prediction_alone():
    torch.manual_seed(0)
    sampler = DDIMSampler(NoiseSchedule(), "eps")
    model = LinearModel()
    x, t = torch.randn(2, 2, 4, 4), torch.tensor([5, 500])
    cond, uncond = {"ctx": torch.randn(2, 2, 4, 4)}, {"ctx": torch.zeros(2, 2, 4, 4)}
    out = sampler.guided_output(model, x, t, cond, uncond, 1.0)
    assert torch.equal(out, model(x, t, cond))
    assert model.calls == [2, 2]  # no unconditional pass


def test_guided_pass_is_one_batched_forward_equal_to_two_passes():
    torch.manual_seed(0)
    sampler = DDIMSampler(NoiseSchedule(), "eps")
    model = LinearModel()
    x, t = torch.randn(2, 2, 4, 4), torch.tensor([5, 500])
    cond, uncond = {"ctx": torch.randn(2, 2, 4, 4)}, {"ctx": torch.zeros(2, 2, 4, 4)}
    out = sampler.guided_output(model, x, t, cond, uncond, 3.0)
    assert model.calls == [4]
    eps_c, eps_u = model(x, t, cond), model(x, t, uncond)
    torch.testing.assert_close(out, eps_u + 3.0 * (eps_c - eps_u))
    with pytest.raises(ValueError, match="uncond"):
        sampler.guided_output(model, x, t, cond, None, 3.0)


def test_concat_conditions_handles_lists_and_rejects_mismatch():
    a = {"ctx": torch.ones(1, 2), "ctrl": [torch.ones(1, 3), torch.ones(1, 1)]}
    b = {"ctx": torch.zeros(1, 2), "ctrl": [torch.zeros(1, 3), torch.zeros(1, 1)]}
    c = concat_conditions(a, b)
    assert c["ctx"].tolist() == [[1, 1], [0, 0]] and [v.shape for v in c["ctrl"]] == [(2, 3), (2, 1)]
    with pytest.raises(ValueError, match="keys"):
        concat_conditions(a, {"ctx": torch.zeros(1, 2)})


def hand_ddim(schedule, model, x, cond, steps, parameterization):
    """Deterministic DDIM written out step by step with the LDM timesteps."""
    ts = [t for t in range(1, 1001, 1000 // steps) if t < 1000]
    abar = schedule.alphas_cumprod
    for i in reversed(range(len(ts))):
        a, a_prev = abar[ts[i]].item(), (abar[ts[i - 1]] if i else abar[0]).item()
        out = model(x, torch.full((x.shape[0],), ts[i]), cond)
        if parameterization == "eps":
            eps = out
            x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
        else:
            x0 = math.sqrt(a) * x - math.sqrt(1 - a) * out
            eps = math.sqrt(1 - a) * x + math.sqrt(a) * out
        x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps
    return x


@pytest.mark.parametrize("parameterization", ["eps", "v"])
def test_eta_zero_sampling_matches_hand_computed_ddim(parameterization):
    torch.manual_seed(0)
    schedule = NoiseSchedule()
    sampler = DDIMSampler(schedule, parameterization)
    x_T, cond = torch.randn(2, 2, 4, 4), {"ctx": torch.randn(2, 2, 4, 4)}
    out = sampler.sample(LinearModel(), x_T.shape, cond, steps=5, progress=False, x_T=x_T)
    expected = hand_ddim(schedule, LinearModel(), x_T.clone(), cond, 5, parameterization)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    again = sampler.sample(LinearModel(), x_T.shape, cond, steps=5, progress=False, x_T=x_T)
    assert torch.equal(out, again)


def test_seeded_sampling_is_deterministic_and_eta_adds_noise():
    sampler = DDIMSampler(NoiseSchedule(), "v")
    cond = {"ctx": torch.zeros(2, 2, 4, 4)}

    def run(seed, eta):
        gen = torch.Generator().manual_seed(seed)
        return sampler.sample(LinearModel(), (2, 2, 4, 4), cond, steps=4, eta=eta, generator=gen, progress=False)

    assert torch.equal(run(7, 1.0), run(7, 1.0))
    assert not torch.allclose(run(7, 1.0), run(8, 1.0))
    x_T = torch.randn((2, 2, 4, 4), generator=torch.Generator().manual_seed(7))
    deterministic = sampler.sample(LinearModel(), (2, 2, 4, 4), cond, steps=4, progress=False, x_T=x_T)
    assert torch.equal(run(7, 0.0), deterministic)  # eta=0: only x_T comes from the generator
    assert not torch.allclose(run(7, 1.0), deterministic)


def test_per_item_generators_make_eta_sampling_independent_of_the_batch():
    sampler = DDIMSampler(NoiseSchedule(), "eps")

    def run(seeds):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        cond = {"ctx": torch.zeros(len(seeds), 2, 4, 4)}
        return sampler.sample(LinearModel(), (len(seeds), 2, 4, 4), cond, steps=4, eta=1.0, generator=gens,
                              progress=False)

    pair = run([3, 5])
    assert torch.allclose(pair[0], run([3])[0], atol=1e-6) and torch.allclose(pair[1], run([5])[0], atol=1e-6)
    assert not torch.allclose(pair[0], pair[1])
    with pytest.raises(ValueError, match="2 generators for a batch of 3"):
        sampler.sample(LinearModel(), (3, 2, 4, 4), {"ctx": torch.zeros(3, 2, 4, 4)}, steps=2, progress=False,
                       generator=[torch.Generator(), torch.Generator()])


def test_sigma_follows_song_et_al():
    sampler = DDIMSampler(NoiseSchedule(), "eps")
    ts, a_t, a_prev, sigma = sampler.coefficients(10, eta=0.5)
    abar = sampler.schedule.alphas_cumprod
    a, ap = abar[901].item(), abar[801].item()
    assert sigma[-1].item() == pytest.approx(0.5 * math.sqrt((1 - ap) / (1 - a) * (1 - a / ap)), rel=1e-12)
    assert a_prev[0].item() == abar[0].item()


def test_clip_x0_bounds_the_final_sample():
    sampler = DDIMSampler(NoiseSchedule(), "eps")
    big = lambda x, t, c: -10 * torch.ones_like(x)  # noqa: E731  (x0 estimate far above 1)
    x_T = torch.zeros(1, 1, 2, 2)
    clipped = sampler.sample(big, x_T.shape, {}, steps=3, progress=False, x_T=x_T, clip_x0=1.0)
    assert clipped.max().item() <= 1.0 + 1e-5
    unclipped = sampler.sample(big, x_T.shape, {}, steps=3, progress=False, x_T=x_T)
    assert unclipped.max().item() > 2.0

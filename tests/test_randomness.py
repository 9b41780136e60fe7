"""Training-step randomness as a function of (run seed, rank, step, micro-batch); fp32 losses under autocast."""
import pytest
import torch

from eyeoct.config import instantiate_from_config, load_config
from ldm.modules.discriminator import hinge_discriminator_loss, hinge_generator_loss
from ldm.modules.distributions import DiagonalGaussianDistribution
from ldm.randomness import StepRandomness, derive_seed

TINY_DM = "configs/dm/tiny_test.yaml"


class Probe(StepRandomness):
    device = torch.device("cpu")

    def __init__(self, seed, rank, step):
        self.run_seed, self.global_rank, self.global_step = seed, rank, step


def test_derived_seeds_are_stable_distinct_and_in_range():
    assert derive_seed(0, 1, 2, 3) == derive_seed(0, 1, 2, 3)
    seeds = {derive_seed(seed, rank, step, micro) for seed in range(2) for rank in range(4) for step in range(50)
             for micro in range(2)}
    assert len(seeds) == 2 * 4 * 50 * 2 and all(0 <= s < 2**63 for s in seeds)
    assert derive_seed(1, 2) != derive_seed(2, 1)
    with pytest.raises(ValueError, match="non-negative"):
        derive_seed(0, -1)


def test_generators_differ_per_rank_step_and_micro_batch_and_reseed_the_default_one():
    draw = lambda probe, micro=0: torch.rand(4, generator=probe.micro_batch_generator(micro))
    base = draw(Probe(7, 0, 10))
    assert torch.equal(base, draw(Probe(7, 0, 10)))
    for other in (draw(Probe(7, 1, 10)), draw(Probe(7, 0, 11)), draw(Probe(7, 0, 10), micro=1), draw(Probe(8, 0, 10))):
        assert not torch.equal(base, other)
    Probe(7, 1, 10).micro_batch_generator(0)  # dropout and other default-generator users: same keys, stream 1
    after = torch.rand(3)
    assert torch.equal(after, torch.rand(3, generator=torch.Generator().manual_seed(derive_seed(7, 1, 10, 0, 1))))


def test_a_training_step_draws_exactly_from_its_generator(repo_root):
    cfg = load_config([repo_root / TINY_DM])
    torch.manual_seed(0)
    model = instantiate_from_config(cfg.model)
    model.run_seed = 5
    g = torch.Generator().manual_seed(0)
    batch = {"oct": torch.rand(3, 6, 32, 32, generator=g) * 2 - 1, "cf": torch.rand(3, 3, 32, 32, generator=g) * 2 - 1}
    out = model.training_step(batch, batch_idx=0)
    expected_generator = torch.Generator().manual_seed(derive_seed(5, 0, 0, 0, 0))
    per_sample, t, _ = model.diffusion_loss(batch, expected_generator, sample_posterior=True)
    assert torch.equal(out["timesteps"], t)
    assert torch.equal(out["per_sample_loss"], per_sample.detach()) and out["loss"] == per_sample.mean()


def test_latents_noise_and_targets_stay_float32_under_bf16_autocast(repo_root):
    cfg = load_config([repo_root / TINY_DM])
    model = instantiate_from_config(cfg.model)
    seen = {}
    q_sample = model.schedule.q_sample

    def spy(z0, t, noise):
        seen.update(z0=z0.dtype, noise=noise.dtype)
        return q_sample(z0, t, noise)

    model.schedule.q_sample = spy
    batch = {"oct": torch.zeros(2, 6, 32, 32), "cf": torch.zeros(2, 3, 32, 32)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        per_sample, _, _ = model.diffusion_loss(batch, torch.Generator().manual_seed(0), sample_posterior=True)
    assert seen == {"z0": torch.float32, "noise": torch.float32} and per_sample.dtype == torch.float32


def test_posterior_and_hinge_terms_are_reduced_in_float32():
    moments = torch.randn(2, 8, 4, 4).bfloat16()
    posterior = DiagonalGaussianDistribution(moments)
    assert posterior.kl().dtype == posterior.sample().dtype == torch.float32
    logits = torch.randn(2, 1, 3, 3).bfloat16()
    assert hinge_generator_loss(logits).dtype == hinge_discriminator_loss(logits, -logits).dtype == torch.float32

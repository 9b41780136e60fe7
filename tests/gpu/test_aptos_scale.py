"""On a CUDA GPU (skipped without one): both stages at the APTOS configs train a bf16 step and sample on CUDA.

The models are the full-size ones of configs/ae/aptos_kl_f8.yaml and configs/dm/aptos_cldm.yaml (random
weights, random data of the configs' shapes), built exactly as `benchmarks/bench_gpu.py` times them. Peak
memory is printed (`-s` shows it). Run with `python -m pytest tests/gpu -s`.
"""
import importlib
import sys

import pytest
import torch

from script_helpers import REPO_ROOT

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _benchmark(name: str):
    """benchmarks/<name>.py as a module (benchmarks/ is not a package; its scripts import their siblings)."""
    if str(REPO_ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    return importlib.import_module(name)


@pytest.mark.parametrize("stage", ["ae", "dm"])
def test_aptos_bf16_training_steps_update_every_parameter_with_a_gradient(stage):
    bench = _benchmark("bench_gpu")
    torch.cuda.reset_peak_memory_stats()
    model, optimizers, step = bench.build(stage, "aptos", {}, torch.device("cuda"))
    for group in (g for optimizer in optimizers for g in optimizer.param_groups):
        group["lr"] = 1e-4  # past the warm-up (its first step has a learning rate of 0)
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    initial = {name: p.detach().clone() for name, p in trainable.items()}
    with_gradient = set()
    for name, p in trainable.items():
        p.register_post_accumulate_grad_hook(
            lambda p, name=name: with_gradient.add(name) if p.grad.abs().sum() > 0 else None)
    for _ in range(3):  # behind zero-initialised output layers, gradients arrive one step later per layer
        step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30
    print(f"\n{stage} at the APTOS config, batch {bench.BATCH[stage]}, bf16 autocast: peak {peak:.2f} GiB "
          f"on {torch.cuda.get_device_name()}")
    assert len(with_gradient) > 0.5 * len(trainable), sorted(set(trainable) - with_gradient)[:10]
    unchanged = [name for name in with_gradient if torch.equal(initial[name], trainable[name].detach())]
    assert not unchanged, f"{len(unchanged)} tensors had gradients but were not updated, e.g. {unchanged[:5]}"
    assert all(torch.isfinite(p).all() for p in trainable.values())


def test_aptos_sampling_on_cuda_in_fp32_and_bf16():
    stage2_config = _benchmark("aptos_models").stage2_config
    from eyeoct.config import instantiate_from_config

    cfg = stage2_config("aptos")
    torch.manual_seed(0)
    model = instantiate_from_config(cfg.model).cuda().eval()
    model.merge_ema()
    cf_size = int(cfg.model.params.cf_size)
    cf = torch.rand(2, 3, cf_size, cf_size, device="cuda") * 2 - 1

    def sample(precision):
        generators = [torch.Generator(device="cuda").manual_seed(i) for i in range(cf.shape[0])]
        return model.sample(cf, steps=10, guidance_scale=2.0, generator=generators, precision=precision)

    torch.cuda.reset_peak_memory_stats()
    reference = sample("fp32")
    fast = sample("bf16")
    print(f"\nsampling 2 volumes at the APTOS config: peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    height, width = model.image_size
    assert reference.shape == (2, 6, height, width) and reference.device.type == "cuda"
    assert torch.isfinite(reference).all() and torch.isfinite(fast).all()
    assert reference.dtype == fast.dtype == torch.float32
    # bf16 rounding accumulates over the steps; the volumes (in [-1, 1]) still agree closely on average
    assert (reference - fast).abs().mean() < 0.1, (reference - fast).abs().mean()

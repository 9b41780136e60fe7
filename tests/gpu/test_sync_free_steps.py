"""On a CUDA GPU (skipped without one): a training step of each stage never waits on the host.

`torch.cuda.set_sync_debug_mode("error")` turns every synchronising call (`.item()`, `.cpu()`, `.tolist()`,
a data-dependent branch on a device tensor) into an error. Run with `python -m pytest tests/gpu`.
"""
import pytest
import torch

from eyeoct.config import instantiate_from_config, load_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def tiny_model(repo_root, config):
    torch.manual_seed(0)
    return instantiate_from_config(load_config([repo_root / config]).model).cuda()


def batch(n=4):
    g = torch.Generator(device="cuda").manual_seed(0)
    return {"oct": torch.rand(n, 6, 32, 32, device="cuda", generator=g) * 2 - 1,
            "cf": torch.rand(n, 3, 32, 32, device="cuda", generator=g) * 2 - 1}


def stage2_step(model, optimizer, data):
    loss = model.training_step(data, batch_idx=0)["loss"]
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    model.ema.update()


def stage1_step(model, optimizers, data, step):
    loss, _ = model.training_losses(data["oct"], model.micro_batch_generator(0), step)
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


@pytest.mark.parametrize("precision", [torch.float32, torch.bfloat16])
def test_stage2_training_step_does_not_synchronise(repo_root, precision):
    model = tiny_model(repo_root, "configs/dm/tiny_test.yaml")
    optimizer = model.configure_optimizers()["optimizer"]
    data = batch()
    with torch.autocast("cuda", dtype=precision, enabled=precision != torch.float32):
        stage2_step(model, optimizer, data)  # warm-up: lazy initialisation may synchronise once
        torch.cuda.set_sync_debug_mode("error")
        try:
            stage2_step(model, optimizer, data)
        finally:
            torch.cuda.set_sync_debug_mode(0)


def test_stage1_training_step_does_not_synchronise(repo_root):
    model = tiny_model(repo_root, "configs/ae/tiny_test.yaml")
    optimizers, _ = model.configure_optimizers()
    data = batch()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        stage1_step(model, optimizers, data, step=10)  # past the discriminator's start: every term is on
        torch.cuda.set_sync_debug_mode("error")
        try:
            stage1_step(model, optimizers, data, step=11)
        finally:
            torch.cuda.set_sync_debug_mode(0)

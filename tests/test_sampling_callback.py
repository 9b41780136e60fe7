"""DiffusionSampleCallback: the sampler and step settings reach the model; the former `ddim_steps` still loads."""
from types import SimpleNamespace

import pytest
import torch

from eyeoct.dm_samples import DiffusionSampleCallback


class RecordingModule:
    """Stands in for ControlLDM: records how it is asked to sample and returns the real volumes."""

    device = torch.device("cpu")

    def __init__(self, volumes):
        self.volumes, self.calls = volumes, []

    def sample(self, cf, **kwargs):
        self.calls.append(kwargs)
        return self.volumes[: cf.shape[0]]


def fake_trainer(tmp_path, batch):
    cases = [{"cf": cf, "oct": oct_volume} for cf, oct_volume in zip(batch["cf"], batch["oct"])]
    loader = SimpleNamespace(dataset=cases)
    return SimpleNamespace(global_step=10, is_global_zero=True, default_root_dir=str(tmp_path), logger=None,
                           datamodule=SimpleNamespace(val_dataloader=lambda: loader))


def test_sampler_and_steps_reach_the_model_and_metrics_are_exact(tmp_path):
    g = torch.Generator().manual_seed(0)
    batch = {"cf": torch.rand(3, 3, 16, 16, generator=g) * 2 - 1, "oct": torch.rand(3, 6, 16, 16, generator=g) * 2 - 1}
    module = RecordingModule(batch["oct"])
    callback = DiffusionSampleCallback(num_cases=2, sampler="ddim", steps=7, eta=0.5, guidance_scale=2.0)
    metrics = callback.sample_and_log(fake_trainer(tmp_path, batch), module)
    (call,) = module.calls
    assert (call["sampler"], call["steps"], call["eta"], call["guidance_scale"]) == ("ddim", 7, 0.5, 2.0)
    assert metrics["ssim"] == pytest.approx(1.0) and metrics["psnr"] > 100  # sampled == real here
    assert (tmp_path / "samples" / "step_0000010.png").is_file()


def test_defaults_the_former_name_and_refusals():
    default = DiffusionSampleCallback()
    assert (default.sampler, default.steps) == ("dpmpp-2m", 15)
    assert DiffusionSampleCallback(sampler="ddim").steps == 50
    assert DiffusionSampleCallback(ddim_steps=20).steps == 20  # configs of earlier runs
    with pytest.raises(ValueError, match="not both"):
        DiffusionSampleCallback(steps=10, ddim_steps=20)
    with pytest.raises(ValueError, match="eta=0.3: the dpmpp-2m sampler is deterministic"):
        DiffusionSampleCallback(sampler="dpmpp-2m", eta=0.3)
    with pytest.raises(ValueError, match="unknown sampler 'heun'"):
        DiffusionSampleCallback(sampler="heun")

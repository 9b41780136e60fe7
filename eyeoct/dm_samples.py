"""Lightning callback: every N steps, sample a few validation cases and log grids, SSIM and PSNR."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image

from eyeoct.data.transforms import unit_to_uint8
from ldm.metrics import psnr_per_volume, ssim_per_image
from ldm.models.diffusion.samplers import DEFAULT_SAMPLER, sampler_class

logger = logging.getLogger(__name__)


def sample_grid(cf: torch.Tensor, real: torch.Tensor, generated: torch.Tensor) -> np.ndarray:
    """One row per case: [CF | six real slices | six generated slices] as uint8 [rows*H, 13*W, 3].

    `cf` [B,3,h,w], `real`/`generated` [B,6,H,W], all in [-1, 1]; the CF is resized to H x W.
    """
    b, n_slices, h, w = real.shape
    cf = F.interpolate(cf.float(), size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    rows = []
    for i in range(b):
        panels = [cf[i]] + [s.expand(3, h, w) for s in real[i].float().unsqueeze(1)]
        panels += [s.expand(3, h, w) for s in generated[i].float().unsqueeze(1)]
        rows.append(torch.cat(panels, dim=2))
    return unit_to_uint8(torch.cat(rows, dim=1)).transpose(1, 2, 0)


def sample_metrics(generated: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """Mean SSIM per B-scan and mean PSNR per volume, on [0, 1] images (data_range 1)."""
    pred, target = (generated.float() + 1) / 2, (real.float() + 1) / 2
    return {"ssim": ssim_per_image(pred, target, data_range=1.0).mean().item(),
            "psnr": psnr_per_volume(pred, target, data_range=1.0).mean().item()}


class DiffusionSampleCallback(pl.Callback):
    """Samples `num_cases` fixed validation cases with a few sampler steps every `every_n_steps` steps.

    `sampler` is `ddim` or `dpmpp-2m` (as `scripts/infer.py --sampler`); `steps` defaults to the sampler's
    own default. `ddim_steps` is the former name of `steps`, kept so configs of earlier runs still load.
    Writes `<run>/samples/step_XXXXXXX.png`, the same grid to TensorBoard (`samples/grid`), and logs
    `val/sample_ssim` and `val/sample_psnr`; also once at the end of training. Only global rank 0 samples
    (the model is called outside the DDP wrapper, so the other ranks need not wait in step).
    """

    def __init__(self, every_n_steps: int = 100, num_cases: int = 4, steps: int | None = None,
                 sampler: str = DEFAULT_SAMPLER, eta: float = 0.0, guidance_scale: float = 1.0, seed: int = 0,
                 ddim_steps: int | None = None):
        super().__init__()
        if ddim_steps is not None:
            if steps is not None:
                raise ValueError(f"give steps or its former name ddim_steps, not both (got {steps}, {ddim_steps})")
            steps = ddim_steps
        sampler_class(sampler).check_eta(eta)
        steps = sampler_class(sampler).default_steps if steps is None else int(steps)
        if every_n_steps < 1 or num_cases < 1 or steps < 1:
            raise ValueError(f"every_n_steps, num_cases and steps must be >= 1, got "
                             f"{every_n_steps}, {num_cases}, {steps}")
        self.every_n_steps = every_n_steps
        self.num_cases = num_cases
        self.steps = steps
        self.sampler = sampler
        self.eta = eta
        self.guidance_scale = guidance_scale
        self.seed = seed
        self._cases: tuple[torch.Tensor, torch.Tensor] | None = None
        self._last_step = -1

    def _validation_cases(self, trainer: pl.Trainer) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `num_cases` cases of the validation dataset (the same whatever the rank count)."""
        if self._cases is None:
            dataset = trainer.datamodule.val_dataloader().dataset
            if len(dataset) == 0:
                raise ValueError("DiffusionSampleCallback: the validation dataset is empty")
            cases = [dataset[i] for i in range(min(self.num_cases, len(dataset)))]
            self._cases = torch.stack([c["cf"] for c in cases]), torch.stack([c["oct"] for c in cases])
        return self._cases

    def sample_and_log(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float] | None:
        """On rank 0: sample the fixed cases (seeded), log metrics and the grid; returns the metrics."""
        step = trainer.global_step
        self._last_step = step
        if not trainer.is_global_zero:
            return None
        cf, real = (t.to(pl_module.device) for t in self._validation_cases(trainer))
        generator = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        generated = pl_module.sample(cf, steps=self.steps, eta=self.eta, guidance_scale=self.guidance_scale,
                                     generator=generator, sampler=self.sampler)
        metrics = sample_metrics(generated, real)
        grid = sample_grid(cf, real, generated)
        out_dir = Path(trainer.default_root_dir) / "samples"
        out_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(out_dir / f"step_{step:07d}.png")
        if trainer.logger is not None:
            trainer.logger.log_metrics({f"val/sample_{k}": v for k, v in metrics.items()}, step=step)
            experiment = getattr(trainer.logger, "experiment", None)
            if hasattr(experiment, "add_image"):
                experiment.add_image("samples/grid", grid, global_step=step, dataformats="HWC")
        logger.info("step %d: sample SSIM %.4f, PSNR %.2f dB", step, metrics["ssim"], metrics["psnr"])
        return metrics

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step > 0 and step % self.every_n_steps == 0 and step != self._last_step:
            self.sample_and_log(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_step != self._last_step:
            self.sample_and_log(trainer, pl_module)

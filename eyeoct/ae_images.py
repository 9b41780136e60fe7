"""Image grids of OCT slices against their autoencoder reconstructions, to TensorBoard and PNG."""
from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from torchvision.utils import make_grid, save_image

logger = logging.getLogger(__name__)


def slice_grid(inputs: torch.Tensor, reconstructions: torch.Tensor, padding: int = 2) -> torch.Tensor:
    """Grid [3, H', W'] in [0, 1]: per case a row of its slices over a row of their reconstructions.

    ``inputs`` and ``reconstructions`` are [B, S, H, W] in [-1, 1]; column k is slice k.
    """
    if inputs.shape != reconstructions.shape or inputs.dim() != 4:
        raise ValueError(f"slice_grid needs two [B, S, H, W] tensors of one shape, got {tuple(inputs.shape)} "
                         f"and {tuple(reconstructions.shape)}")
    b, s, h, w = inputs.shape
    rows = torch.stack([inputs, reconstructions], dim=1).reshape(2 * b * s, 1, h, w)
    images = ((rows.detach().float().cpu() + 1.0) / 2.0).clamp(0.0, 1.0)
    return make_grid(images, nrow=s, padding=padding, pad_value=1.0)


class ReconstructionImages(pl.Callback):
    """Every ``every_n_steps`` generator steps (rank 0), reconstruct the first ``max_cases`` cases of the
    training batch (posterior mode) and write the grid to TensorBoard (``train/reconstruction``) and to
    ``<run_dir>/samples/reconstruction_step<step>.png``."""

    def __init__(self, every_n_steps: int = 100, max_cases: int = 2):
        if every_n_steps < 1 or max_cases < 1:
            raise ValueError(f"every_n_steps and max_cases must be >= 1, got {every_n_steps}, {max_cases}")
        self.every_n_steps, self.max_cases = every_n_steps, max_cases
        self._last_step = -1

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero or step % self.every_n_steps or step == self._last_step:
            return
        self._last_step = step
        x = pl_module.get_input(batch)[: self.max_cases]
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            recon, _ = pl_module(x, sample_posterior=False)
        pl_module.train(was_training)
        grid = slice_grid(x, recon)
        if isinstance(trainer.logger, TensorBoardLogger):
            trainer.logger.experiment.add_image("train/reconstruction", grid, global_step=step)
        path = Path(trainer.default_root_dir) / "samples" / f"reconstruction_step{step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        logger.debug("wrote %s", path)

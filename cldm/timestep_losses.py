"""The training loss per timestep range, logged without waiting on the device in the training step."""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch


def bucket_edges(num_timesteps: int, num_buckets: int) -> list[int]:
    """``num_buckets + 1`` edges of equal timestep ranges covering [0, T-1]."""
    if not 1 <= num_buckets <= num_timesteps:
        raise ValueError(f"num_buckets must be in [1, {num_timesteps}], got {num_buckets}")
    return [round(i * num_timesteps / num_buckets) for i in range(num_buckets + 1)]


def bucket_names(num_timesteps: int, num_buckets: int) -> list[str]:
    """Names ``loss_t{lo}-{hi}`` of the buckets, e.g. ``loss_t0-249`` for the first quarter of T=1000."""
    edges = bucket_edges(num_timesteps, num_buckets)
    return [f"loss_t{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])]


def bucket_sums(per_sample_loss: torch.Tensor, t: torch.Tensor, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of the losses [K] and sample count [K] per bucket for losses [B] at timesteps [B].

    ``edges`` are the K-1 inner bucket edges (ascending, on ``t``'s device); no host synchronisation.
    """
    index = torch.bucketize(t, edges, right=True)
    sums = torch.zeros(edges.numel() + 1, device=t.device, dtype=torch.float32)
    counts = torch.zeros_like(sums)
    sums.index_add_(0, index, per_sample_loss.float())
    counts.index_add_(0, index, torch.ones_like(per_sample_loss, dtype=torch.float32))
    return sums, counts


class TimestepLossBuckets(pl.Callback):
    """Logs ``train/loss_t{lo}-{hi}``: the mean loss of the samples whose timestep fell in each of
    ``num_buckets`` equal ranges, over the steps since the last log (this rank's samples).

    Reads the ``per_sample_loss`` and ``timesteps`` that ``training_step`` returns, sums them on the device,
    and reads the sums back only when it logs (every ``trainer.log_every_n_steps`` optimiser steps).
    """

    def __init__(self, num_timesteps: int, num_buckets: int = 4):
        self.names = bucket_names(num_timesteps, num_buckets)
        self._inner_edges = bucket_edges(num_timesteps, num_buckets)[1:-1]
        self._edges: torch.Tensor | None = None
        self._sums: torch.Tensor | None = None
        self._counts: torch.Tensor | None = None
        self._last_logged_step = -1

    def _accumulate(self, per_sample_loss: torch.Tensor, t: torch.Tensor) -> None:
        if self._edges is None or self._edges.device != t.device:
            self._edges = torch.tensor(self._inner_edges, device=t.device, dtype=t.dtype)
        sums, counts = bucket_sums(per_sample_loss, t, self._edges)
        if self._sums is None:
            self._sums, self._counts = sums, counts
        else:
            self._sums += sums
            self._counts += counts

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not isinstance(outputs, dict) or "timesteps" not in outputs:
            return
        self._accumulate(outputs["per_sample_loss"], outputs["timesteps"])
        step = trainer.global_step
        if step % trainer.log_every_n_steps or step == self._last_logged_step or trainer.logger is None:
            return
        self._last_logged_step = step
        sums, counts = self._sums.tolist(), self._counts.tolist()  # the one read-back, at logging steps
        metrics = {f"train/{name}": s / c for name, s, c in zip(self.names, sums, counts) if c > 0}
        if metrics:
            trainer.logger.log_metrics(metrics, step=step)
        self._sums = self._counts = None

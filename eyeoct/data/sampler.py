"""The training data order: a permutation per pass from (run seed, pass), shared by all ranks and resumable.

Pass ``e`` visits the dataset in ``permutation(seed, e)``. Each optimiser-free "global batch" is the next
``world_size * batch_size`` indices of that order, rank ``r`` taking the ``r``-th block of ``batch_size``,
so the order consumed by the whole job does not depend on how it is split across ranks. The sampler's
position is a global sample offset inside the current pass: a run resumed from a checkpoint continues
at that offset (with any number of ranks) and draws exactly the batches the uninterrupted run drew.

With ``drop_last`` a final partial global batch is dropped; without it, the remaining samples are split
evenly over the ranks (the order is padded from its start so every rank gets the same batch size).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator

import torch
from torch.utils.data import Sampler

from ldm.randomness import derive_seed

logger = logging.getLogger(__name__)


@dataclass
class SamplerPosition:
    """Where the training data order stands: pass number and samples of that pass already consumed."""

    epoch: int = 0
    offset: int = 0


def pass_order(num_samples: int, seed: int, epoch: int) -> list[int]:
    """The dataset order of pass `epoch`: a permutation of range(num_samples) seeded by (seed, epoch)."""
    generator = torch.Generator().manual_seed(derive_seed(seed, epoch))
    return torch.randperm(num_samples, generator=generator).tolist()


class ResumableBatchSampler(Sampler[list[int]]):
    """Batches of dataset indices for one rank, in the shared pass order, from a resumable position.

    Each `__iter__` is one pass; the next one starts at the following pass. `__len__` is the number of
    batches a full pass gives this rank (what the training loop counts an epoch as). The training loop
    reports each batch it consumes with `note_consumed` (prefetched batches are not consumed), and
    `position()` is where a run resumed from that moment must continue.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False, start: SamplerPosition | None = None):
        if num_samples < 1 or batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need num_samples, batch_size, world_size >= 1 and 0 <= rank < world_size, got "
                             f"{num_samples}, {batch_size}, {world_size}, {rank}")
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.global_batch = batch_size * world_size
        if drop_last and num_samples < self.global_batch:
            raise ValueError(f"drop_last with {num_samples} samples and a global batch of {self.global_batch} "
                             f"({world_size} ranks x {batch_size}) leaves no batch to train on")
        start = start or SamplerPosition()
        if start.offset >= self._usable:
            start = SamplerPosition(start.epoch + 1, 0)
        self._current, self._consumed, self._next = start, 0, start

    @property
    def _usable(self) -> int:
        """Samples of a pass that are consumed (a final partial global batch is dropped with drop_last)."""
        return self.num_samples - self.num_samples % self.global_batch if self.drop_last else self.num_samples

    def _global_batches(self, offset: int) -> list[tuple[int, int]]:
        """(start offset, per-rank size) of each global batch of a pass from `offset` on."""
        batches = []
        while offset < self._usable:
            size = min(self.global_batch, self.num_samples - offset)
            batches.append((offset, -(-size // self.world_size)))
            offset += size
        return batches

    def __len__(self) -> int:
        return len(self._global_batches(0))

    def __iter__(self) -> Iterator[list[int]]:
        self._current, self._consumed = self._next, 0
        self._next = SamplerPosition(self._current.epoch + 1, 0)
        order = pass_order(self.num_samples, self.seed, self._current.epoch)
        for start, size in self._global_batches(self._current.offset):
            first = start + self.rank * size
            yield [order[i % self.num_samples] for i in range(first, first + size)]

    def note_consumed(self) -> None:
        """One more batch of the current pass went into a training step."""
        self._consumed += 1

    def position(self) -> SamplerPosition:
        """The position after the batches consumed so far (the next pass once this one is used up)."""
        offset = self._current.offset
        for start, _ in self._global_batches(offset)[: self._consumed]:
            offset = min(start + self.global_batch, self.num_samples)
        if offset >= self._usable:
            return SamplerPosition(self._current.epoch + 1, 0)
        return SamplerPosition(self._current.epoch, offset)

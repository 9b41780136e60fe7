"""Randomness of a training step as a pure function of (run seed, global rank, global step, micro-batch).

Every random draw of a training step (timesteps, noise, posterior samples, condition dropping) comes from
one ``torch.Generator`` seeded from those keys, and torch's default generator (dropout, third-party layers)
is reseeded from the same keys, so ranks draw differently and a resumed run draws exactly what the
uninterrupted run drew.
"""
from __future__ import annotations

import numpy as np
import torch

SEED_BITS = 63  # torch.Generator.manual_seed takes values below 2**64; keep them positive int64 as well


def derive_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from non-negative integer keys (NumPy's SeedSequence hashing)."""
    if any(int(k) < 0 for k in keys):
        raise ValueError(f"seed keys must be non-negative integers, got {keys}")
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, np.uint64)[0]
    return int(state) >> (64 - SEED_BITS)


class StepRandomness:
    """Mixin for LightningModules: ``run_seed`` (set from the run config) plus per-micro-batch generators.

    Streams: 0 is the generator handed to the model's own draws, 1 reseeds torch's default generator.
    """

    run_seed: int = 0

    def micro_batch_generator(self, micro_batch: int) -> torch.Generator:
        """Seed this micro-batch's randomness and return the generator for the step's own draws.

        ``micro_batch`` is the batch's index inside its optimiser step (0 without gradient accumulation).
        Also reseeds torch's default generator from the same keys, for dropout and other layers that
        draw from it. Creating and seeding a generator is host-side work: no device synchronisation.
        """
        keys = (int(self.run_seed), int(self.global_rank), int(self.global_step), int(micro_batch))
        torch.manual_seed(derive_seed(*keys, 1))
        generator = torch.Generator(device=self.device)
        generator.manual_seed(derive_seed(*keys, 0))
        return generator

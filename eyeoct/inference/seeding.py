"""Per-sample random seeds that depend on the run seed and the case, never on the batch.

Sample `j` of case `case_id` always starts from `sample_seed(seed, case_id, j)`, so a CF photo gives
the same volume whether it is run alone, in a folder, or in a batch of any size. The case id (file
stem) is used rather than the position in the input list, so adding files to a folder does not
change the results of the others.
"""
from __future__ import annotations

import hashlib

import torch


def sample_seed(seed: int, case_id: str, sample_index: int) -> int:
    """A 63-bit seed derived from the run seed, the case id and the sample number."""
    digest = hashlib.sha256(f"{int(seed)}\x00{case_id}\x00{int(sample_index)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def sample_generators(seeds: list[int], device: torch.device | str) -> list[torch.Generator]:
    """One generator per batch item, seeded with `seeds`, on `device` (noise is drawn where it is used)."""
    return [torch.Generator(device=device).manual_seed(s) for s in seeds]

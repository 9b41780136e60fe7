"""Retrieval keys of CF images and nearest-neighbour matching for the NN baselines.

Pixel key: the preprocessed CF in [-1, 1], area-averaged (adaptive average pooling) to
`PIXEL_KEY_SIZE` x `PIXEL_KEY_SIZE` per channel, flattened; matched by smallest L2 distance.
Encoder key: the mean over the CF encoder's tokens, L2-normalised; matched by largest cosine
similarity. Ties go to the lowest training index.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PIXEL_KEY_SIZE = 32


def pixel_keys(cf: torch.Tensor, size: int = PIXEL_KEY_SIZE) -> torch.Tensor:
    """[B,3,h,w] CF batch -> [B, 3*size*size] float64 keys (area-averaged thumbnails)."""
    if cf.ndim != 4:
        raise ValueError(f"pixel_keys expects a CF batch [B,3,h,w], got shape {tuple(cf.shape)}")
    return F.adaptive_avg_pool2d(cf.double(), size).flatten(1)


@torch.no_grad()
def encoder_keys(encoder: nn.Module, cf: torch.Tensor) -> torch.Tensor:
    """[B,3,h,w] CF batch -> [B, D] unit-norm mean token of `encoder(cf)` ([B,N,D] tokens)."""
    device = next(encoder.parameters()).device
    tokens = encoder(cf.to(device))
    if tokens.ndim != 3:
        raise ValueError(f"CF encoder must return tokens [B,N,D], got shape {tuple(tokens.shape)}")
    return F.normalize(tokens.double().mean(dim=1), dim=1).cpu()


def nearest_by_l2(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Index into `keys` [M,D] of the smallest exact L2 distance for each query [Q,D]."""
    _check_pair(queries, keys)
    distances = torch.cdist(queries.double(), keys.double(), compute_mode="donot_use_mm_for_euclid_dist")
    return distances.argmin(dim=1)


def nearest_by_cosine(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Index into `keys` [M,D] of the largest cosine similarity for each query [Q,D]."""
    _check_pair(queries, keys)
    similarity = F.normalize(queries.double(), dim=1) @ F.normalize(keys.double(), dim=1).T
    return similarity.argmax(dim=1)


def _check_pair(queries: torch.Tensor, keys: torch.Tensor) -> None:
    if keys.ndim != 2 or queries.ndim != 2 or keys.shape[1] != queries.shape[1] or len(keys) == 0:
        raise ValueError(f"cannot match queries {tuple(queries.shape)} against keys {tuple(keys.shape)}: "
                         f"expected [Q,D] and a non-empty [M,D]")

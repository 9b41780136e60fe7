"""Frechet distance between Gaussians fitted to feature sets (FVD, FID), in float64."""
from __future__ import annotations

import numpy as np


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased (n-1) covariance [D,D] of features [N,D], in float64. Needs N >= 2."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"feature_statistics needs features [N>=2, D], got shape {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False, ddof=1)


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((S1 S2)^(1/2)) for symmetric PSD S1, S2, via the similar symmetric S1^(1/2) S2 S1^(1/2).

    Equal to Tr(scipy.linalg.sqrtm(S1 @ S2)) but real-valued by construction and several times
    faster for 2048-d Inception features; round-off negative eigenvalues are clipped to 0.
    """
    evals, evecs = np.linalg.eigh(sigma1)
    root1 = (evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T
    inner = root1 @ sigma2 @ root1
    return float(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1-mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)) in float64."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"frechet_distance: inconsistent shapes mu {mu1.shape}/{mu2.shape}, "
                         f"sigma {sigma1.shape}/{sigma2.shape}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))


def frechet_distance_from_features(features_a, features_b) -> float:
    """Frechet distance between two feature sets [N,D] (each N >= 2), float64, n-1 covariances.

    With fewer samples than dimensions (e.g. 2048-d Inception features of a few hundred B-scans) the
    trace term is computed from the samples: with centred A [n1,D], B [n2,D],
    Tr((S1 S2)^(1/2)) = nuclear norm of A B^T / sqrt((n1-1)(n2-1)), since the non-zero eigenvalues of
    S1 S2 are those of (A B^T)(A B^T)^T / ((n1-1)(n2-1)). This avoids D x D square roots.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mu1, sigma1 = feature_statistics(a)
    mu2, sigma2 = feature_statistics(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets differ in dimension: {a.shape} vs {b.shape}")
    if max(len(a), len(b)) >= a.shape[1]:
        return frechet_distance(mu1, sigma1, mu2, sigma2)
    cross = (a - mu1) @ (b - mu2).T
    trace_sqrt = np.linalg.svd(cross, compute_uv=False).sum() / np.sqrt((len(a) - 1) * (len(b) - 1))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)

"""Frechet distance between Gaussians fitted to feature sets (FVD, FID), in float64."""
from __future__ import annotations

import logging

import numpy as np
import scipy.linalg

logger = logging.getLogger(__name__)


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and unbiased (n-1) covariance [D,D] of features [N,D], in float64. Needs N >= 2."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"feature_statistics needs features [N>=2, D], got shape {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False, ddof=1)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """||mu1-mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) with scipy.linalg.sqrtm, float64.

    If the product is singular enough for sqrtm to return non-finite values, eps is added to both
    diagonals (logged). A tiny imaginary part from round-off is dropped; a large one is an error.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"frechet_distance: inconsistent shapes mu {mu1.shape}/{mu2.shape}, "
                         f"sigma {sigma1.shape}/{sigma2.shape}")
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        logger.warning("sqrtm of the covariance product is not finite; adding %g to the diagonals", eps)
        offset = np.eye(mu1.size) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"frechet_distance: sqrtm has a large imaginary part "
                             f"({np.abs(covmean.imag).max():.3g}); covariances are ill-conditioned")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance_from_features(features_a, features_b) -> float:
    """Frechet distance between two feature sets [N,D] (each N >= 2)."""
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))

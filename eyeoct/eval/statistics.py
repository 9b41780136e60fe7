"""Confidence intervals and paired tests for per-case metric values.

Case resampling: `bootstrap_indices(n, B, seed)` draws B resamples of the n cases with replacement
(`np.random.default_rng(seed).integers(0, n, (B, n))`, the draw `scipy.stats.bootstrap` makes with the same
generator). Every method and metric is resampled with the same indices, so differences are paired.
Intervals are percentile intervals of the resampled means. The paired test is the two-sided Wilcoxon
signed-rank test of the per-case differences (`scipy.stats.wilcoxon`, zeros dropped: "wilcox"); when every
difference is zero there is nothing to test and p = 1. Non-finite values (PSNR of identical volumes is inf)
are left out: a mean uses the finite cases, a difference the cases finite in both methods, each resampled
among themselves with the same seed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

DEFAULT_RESAMPLES = 10000
DEFAULT_LEVEL = 0.95


def bootstrap_indices(n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """[resamples, n] int64 case indices, each row one resample with replacement."""
    if n < 1 or resamples < 1:
        raise ValueError(f"bootstrap needs at least one case and one resample, got n={n}, resamples={resamples}")
    return np.random.default_rng(seed).integers(0, n, (resamples, n))


def percentile_interval(values: np.ndarray, indices: np.ndarray, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` [n] over the resamples `indices` [B, n]."""
    means = np.asarray(values, np.float64)[indices].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.percentile(means, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(low), float(high)


@dataclass
class MeanInterval:
    """Mean of one method's per-case values with its bootstrap interval; `n` finite cases of `n_total`."""

    n: int
    n_total: int
    mean: float
    ci_low: float
    ci_high: float


@dataclass
class PairedDifference:
    """Mean of (method - reference) over the cases where both are finite, its interval and the test's p."""

    n: int
    mean: float
    ci_low: float
    ci_high: float
    p_wilcoxon: float


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of paired differences [n]; 1.0 when all are zero, nan when none."""
    differences = np.asarray(differences, np.float64)
    if len(differences) == 0:
        return float("nan")
    if not np.any(differences != 0):
        return 1.0
    return float(stats.wilcoxon(differences, zero_method="wilcox", alternative="two-sided").pvalue)


class Bootstrap:
    """Seeded case resampling shared by every method and metric of one report (`resamples` = B)."""

    def __init__(self, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = DEFAULT_LEVEL):
        if not 0.0 < level < 1.0:
            raise ValueError(f"confidence level must lie in (0, 1), got {level}")
        self.resamples, self.seed, self.level = int(resamples), int(seed), float(level)
        self._cache: dict[int, np.ndarray] = {}

    def indices(self, n: int) -> np.ndarray:
        """[B, n] resamples of n cases; the same for every call with the same n."""
        if n not in self._cache:
            self._cache[n] = bootstrap_indices(n, self.resamples, self.seed)
        return self._cache[n]

    def mean_interval(self, values: np.ndarray) -> MeanInterval:
        """Mean and interval of the finite entries of `values` [n] (e.g. PSNR of identical volumes is inf and
        is left out; `n` says how many remain, resampled among themselves). All non-finite: nan."""
        values = np.asarray(values, np.float64)
        kept = values[np.isfinite(values)]
        if len(kept) == 0:
            return MeanInterval(0, len(values), float("nan"), float("nan"), float("nan"))
        low, high = percentile_interval(kept, self.indices(len(kept)), self.level)
        return MeanInterval(len(kept), len(values), float(kept.mean()), low, high)

    def paired_difference(self, reference: np.ndarray, method: np.ndarray) -> PairedDifference:
        """`method` [n] minus `reference` [n] (same cases, same order) over the cases where both are finite."""
        reference, method = np.asarray(reference, np.float64), np.asarray(method, np.float64)
        if reference.shape != method.shape:
            raise ValueError(f"paired values need the same cases: {reference.shape} vs {method.shape}")
        keep = np.isfinite(reference) & np.isfinite(method)
        if not keep.any():
            return PairedDifference(0, float("nan"), float("nan"), float("nan"), float("nan"))
        differences = method[keep] - reference[keep]
        low, high = percentile_interval(differences, self.indices(len(differences)), self.level)
        return PairedDifference(len(differences), float(differences.mean()), low, high, wilcoxon_p(differences))

    def describe(self) -> str:
        return (f"{self.level:.0%} percentile bootstrap intervals of the mean over cases, B = {self.resamples} "
                f"resamples (seed {self.seed}, the same resamples for every method: paired differences)")


def as_record(result: MeanInterval | PairedDifference) -> dict:
    """A dataclass result as a plain dict (for tables and JSON)."""
    return asdict(result)

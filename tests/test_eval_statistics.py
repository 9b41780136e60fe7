"""eyeoct.eval.statistics against scipy on the same resamples, and cases whose answer is known."""
import numpy as np
import pytest
from scipy import stats

from eyeoct.eval.statistics import Bootstrap, bootstrap_indices, wilcoxon_p


def _scipy_interval(samples, statistic, resamples, seed, paired=False):
    result = stats.bootstrap(samples, statistic, n_resamples=resamples, method="percentile", paired=paired,
                             vectorized=True, rng=np.random.default_rng(seed))
    return result.confidence_interval.low, result.confidence_interval.high


def test_mean_interval_equals_scipy_percentile_bootstrap_on_the_same_resamples():
    values = np.random.default_rng(3).gamma(2.0, 0.1, 37)
    result = Bootstrap(resamples=3000, seed=11).mean_interval(values)
    low, high = _scipy_interval((values,), np.mean, 3000, 11)
    assert result.n == result.n_total == 37
    assert result.mean == pytest.approx(values.mean(), abs=1e-15)
    assert (result.ci_low, result.ci_high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert result.ci_low < result.mean < result.ci_high


def test_paired_difference_equals_scipy_paired_bootstrap_and_wilcoxon():
    rng = np.random.default_rng(5)
    reference = rng.normal(0.7, 0.05, 25)
    method = reference + rng.normal(0.03, 0.01, 25)
    result = Bootstrap(resamples=2000, seed=4).paired_difference(reference, method)
    low, high = _scipy_interval((reference, method), lambda a, b, axis: np.mean(b - a, axis=axis), 2000, 4,
                                paired=True)
    assert result.n == 25 and result.mean == pytest.approx(np.mean(method - reference), abs=1e-15)
    assert (result.ci_low, result.ci_high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert result.p_wilcoxon == pytest.approx(stats.wilcoxon(method - reference).pvalue, abs=1e-15)
    assert result.p_wilcoxon < 1e-4 and result.ci_low > 0  # a shift of 0.03 against a spread of 0.01


def test_wilcoxon_drops_zero_differences_as_scipy_does_and_all_zero_gives_one():
    differences = np.array([0.0, 0.0, 0.3, -0.1, 0.25, 0.4, 0.05, -0.02, 0.6])
    expected = stats.wilcoxon(differences, zero_method="wilcox").pvalue
    assert wilcoxon_p(differences) == pytest.approx(expected, abs=1e-15)
    assert wilcoxon_p(np.zeros(7)) == 1.0
    assert np.isnan(wilcoxon_p(np.array([])))


def test_identical_methods_differ_by_exactly_zero_with_p_one():
    values = np.random.default_rng(0).uniform(0.5, 0.9, 30)
    result = Bootstrap(resamples=500, seed=0).paired_difference(values, values.copy())
    assert (result.mean, result.ci_low, result.ci_high, result.p_wilcoxon) == (0.0, 0.0, 0.0, 1.0)


def test_known_intervals_constant_values_and_a_single_case():
    bootstrap = Bootstrap(resamples=200, seed=1)
    constant = bootstrap.mean_interval(np.full(9, 0.25))
    assert (constant.mean, constant.ci_low, constant.ci_high) == (0.25, 0.25, 0.25)
    single = bootstrap.mean_interval(np.array([3.0]))
    assert (single.n, single.ci_low, single.ci_high) == (1, 3.0, 3.0)


def test_non_finite_values_are_left_out_and_counted():
    bootstrap = Bootstrap(resamples=300, seed=2)
    psnr = np.array([20.0, np.inf, 22.0, 24.0, np.inf])
    result = bootstrap.mean_interval(psnr)
    finite = psnr[np.isfinite(psnr)]
    assert (result.n, result.n_total, result.mean) == (3, 5, 22.0)
    assert (result.ci_low, result.ci_high) == tuple(
        np.percentile(finite[bootstrap_indices(3, 300, 2)].mean(axis=1), [2.5, 97.5]))
    paired = bootstrap.paired_difference(psnr, np.array([21.0, 30.0, np.inf, 25.0, np.inf]))
    assert paired.n == 2 and paired.mean == pytest.approx(1.0)  # cases 0 and 3 are finite in both
    nothing = bootstrap.mean_interval(np.array([np.inf, np.nan]))
    assert nothing.n == 0 and np.isnan(nothing.mean) and np.isnan(nothing.ci_low)


def test_resamples_are_seeded_and_shared():
    assert np.array_equal(bootstrap_indices(10, 50, 7), bootstrap_indices(10, 50, 7))
    assert not np.array_equal(bootstrap_indices(10, 50, 7), bootstrap_indices(10, 50, 8))
    bootstrap = Bootstrap(resamples=50, seed=7)
    assert bootstrap.indices(10) is bootstrap.indices(10)
    with pytest.raises(ValueError, match="confidence level"):
        Bootstrap(level=1.5)

"""Paired significance tests: hand-computable cases, and scipy as the reference when installed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ragkeel.evaluation.metrics.stats import bootstrap_ci, paired_permutation_test


def test_all_equal_improvements_on_three_queries_is_two_of_eight() -> None:
    # Only "all +" and "all -" reach |sum| = 3 out of 2**3 sign assignments.
    result = paired_permutation_test([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    assert result.p_value == pytest.approx(2 / 8)
    assert (result.mean_a, result.mean_b, result.delta, result.n) == (0.0, 1.0, 1.0, 3)
    assert result.exact


def test_uneven_differences_count_only_assignments_as_extreme() -> None:
    # diffs (2, 1): signed sums 3, 1, -1, -3 -> two of four reach |3|.
    assert paired_permutation_test([0.0, 0.0], [2.0, 1.0]).p_value == pytest.approx(0.5)
    # diffs (-1, -1, -1, -1, -1): 2 / 32.
    drop = paired_permutation_test([1.0] * 5, [0.0] * 5)
    assert drop.p_value == pytest.approx(2 / 32)
    assert drop.delta == -1.0


def test_no_difference_gives_p_one() -> None:
    assert paired_permutation_test([0.2, 0.8], [0.8, 0.2]).p_value == 1.0
    assert paired_permutation_test([0.5] * 40, [0.5] * 40).p_value == 1.0


def test_none_pairs_are_dropped_and_counted_not_read_as_zero() -> None:
    result = paired_permutation_test([1.0, None, 0.0, 0.5], [1.0, 0.0, None, 0.5])
    assert (result.n, result.n_dropped) == (2, 2)
    assert result.mean_a == result.mean_b == 0.75
    with pytest.raises(ValueError, match="no complete pairs"):
        paired_permutation_test([None, 1.0], [0.0, None])
    with pytest.raises(ValueError, match="equal lengths"):
        paired_permutation_test([1.0], [1.0, 2.0])


def test_sampled_p_value_is_never_zero_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0.4, 1.0, size=200)
    b = a - 0.3
    result = paired_permutation_test(list(a), list(b), n_resamples=999, seed=3)
    assert not result.exact
    assert result.p_value == pytest.approx(1 / 1000)  # no resample reaches the observed sum
    again = paired_permutation_test(list(a), list(b), n_resamples=999, seed=3)
    assert again == result


def test_sampled_noise_without_shift_is_not_significant() -> None:
    rng = np.random.default_rng(7)
    a = rng.uniform(size=300)
    b = a + rng.normal(0.0, 0.2, size=300) * rng.choice([-1, 1], size=300)
    b -= (b - a).mean()  # exactly zero mean difference
    b += 1e-3
    assert paired_permutation_test(list(a), list(b), seed=0).p_value > 0.5


@pytest.fixture
def scipy_stats() -> Any:
    """scipy is the reference when it happens to be installed; it is not a dependency."""
    return pytest.importorskip("scipy.stats")


def _scipy_paired_p(scipy_stats: Any, a: np.ndarray, b: np.ndarray, n_resamples: float) -> float:
    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(y - x, axis=axis)

    res = scipy_stats.permutation_test(
        (a, b),
        statistic,
        permutation_type="samples",
        alternative="two-sided",
        n_resamples=n_resamples,
        vectorized=True,
        random_state=0,
    )
    return float(res.pvalue)


@pytest.mark.parametrize("n", [4, 9, 16])
def test_exact_enumeration_equals_scipy_exact(scipy_stats: Any, n: int) -> None:
    rng = np.random.default_rng(n)
    a = rng.uniform(size=n)
    b = np.clip(a + rng.normal(-0.15, 0.2, size=n), 0, 1)
    ours = paired_permutation_test(list(a), list(b))
    assert ours.exact
    assert ours.p_value == pytest.approx(_scipy_paired_p(scipy_stats, a, b, np.inf), abs=1e-12)


def test_sampled_p_value_agrees_with_scipy_exact(scipy_stats: Any) -> None:
    rng = np.random.default_rng(17)
    a = rng.uniform(size=17)
    b = np.clip(a + rng.normal(-0.08, 0.2, size=17), 0, 1)
    reference = _scipy_paired_p(scipy_stats, a, b, np.inf)  # 2**17 assignments, enumerated by scipy
    ours = paired_permutation_test(list(a), list(b), n_resamples=20_000, seed=1)
    assert not ours.exact
    assert 0.01 < reference < 0.9  # the case is informative, not at either end
    assert ours.p_value == pytest.approx(reference, abs=0.015)  # ~3 standard errors


def test_bootstrap_degenerate_cases() -> None:
    assert bootstrap_ci([0.25] * 30) == pytest.approx(bootstrap_ci([0.25]))
    ci = bootstrap_ci([0.25] * 30)
    assert (ci.low, ci.high, ci.confidence) == (0.25, 0.25, 0.95)
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([0.1], confidence=1.0)


def test_bootstrap_interval_matches_scipy_percentile_bootstrap(scipy_stats: Any) -> None:
    rng = np.random.default_rng(5)
    deltas = rng.normal(-0.05, 0.3, size=150)
    ours = bootstrap_ci(list(deltas), seed=2)
    ref = scipy_stats.bootstrap(
        (deltas,), np.mean, method="percentile", n_resamples=10_000, random_state=2
    ).confidence_interval
    assert ours.low < float(deltas.mean()) < ours.high
    assert ours.low == pytest.approx(ref.low, abs=0.006)
    assert ours.high == pytest.approx(ref.high, abs=0.006)
    narrower = bootstrap_ci(list(deltas), confidence=0.5, seed=2)
    assert ours.low < narrower.low < narrower.high < ours.high

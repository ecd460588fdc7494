"""Paired significance on per-query scores: is run B really different from run A, or is the
difference what reshuffling the same queries would give anyway?

Both functions work on *paired* scores — the same query scored by both runs — because the
query-to-query spread (an easy question vs. a hard one) is far larger than the change being
measured; pairing removes it.

- :func:`paired_permutation_test`: the two-sided sign-flip randomisation test. Under the null
  hypothesis "A and B are exchangeable", each per-query difference ``b - a`` is as likely to
  have the opposite sign, so the p-value is the share of sign assignments whose mean difference
  is at least as far from zero as the observed one. With ``n <= 16`` pairs all ``2**n``
  assignments are enumerated (an exact p-value; small sets are where sampling noise would
  matter most); beyond that ``n_resamples`` random assignments are drawn and the p-value is
  ``(hits + 1) / (n_resamples + 1)``, which never reports an impossible 0.
- :func:`bootstrap_ci`: a percentile bootstrap confidence interval of the mean difference.

Pairs where either score is ``None`` (metric not applicable to that query) are dropped and
counted in ``n_dropped``; ``None`` is never read as 0. Everything is numpy-vectorised and
processed in bounded batches, so 10 000 resamples over thousands of queries stay fast and small.
Results are deterministic for a given ``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

EXACT_MAX_N = 16  # 2**16 sign assignments: exact enumeration is cheaper than sampling
_BATCH_CELLS = 2_000_000  # resample matrix cells per batch (~16 MB of float64)
_REL_TOL = 100 * float(np.finfo(np.float64).eps)  # ties up to rounding count as "as extreme"


@dataclass(frozen=True, slots=True)
class PairedTest:
    """Outcome of a paired test. ``delta = mean_b - mean_a`` over the ``n`` complete pairs;
    ``n_dropped`` pairs had a ``None`` on either side. ``exact`` says the p-value came from
    full enumeration rather than sampling."""

    mean_a: float
    mean_b: float
    delta: float
    p_value: float
    n: int
    n_dropped: int = 0
    exact: bool = False


@dataclass(frozen=True, slots=True)
class ConfidenceInterval:
    low: float
    high: float
    confidence: float


def complete_pairs(
    a: Sequence[float | None], b: Sequence[float | None]
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """The pairs where both scores are present, as arrays, and how many were dropped."""
    if len(a) != len(b):
        raise ValueError(f"paired scores need equal lengths, got {len(a)} and {len(b)}")
    kept = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    xs = np.array([x for x, _ in kept], dtype=np.float64)
    ys = np.array([y for _, y in kept], dtype=np.float64)
    return xs, ys, len(a) - len(kept)


def paired_permutation_test(
    a: Sequence[float | None],
    b: Sequence[float | None],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> PairedTest:
    """Two-sided sign-flip test of ``mean(b - a) == 0`` on paired per-query scores.

    Raises ``ValueError`` when no complete pair is left (there is nothing to test; callers
    report such a metric as missing rather than as "no change").
    """
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    xs, ys, dropped = complete_pairs(a, b)
    n = len(xs)
    if n == 0:
        raise ValueError("no complete pairs: every pair has a None on one side")
    diffs = ys - xs
    observed = abs(float(diffs.sum()))
    exact = n <= EXACT_MAX_N
    if observed == 0.0:
        p_value = 1.0
    elif exact:
        p_value = _exact_p(diffs, observed)
    else:
        p_value = _sampled_p(diffs, observed, n_resamples, seed)
    mean_a, mean_b = float(xs.mean()), float(ys.mean())
    return PairedTest(mean_a, mean_b, mean_b - mean_a, p_value, n, dropped, exact)


def _exact_p(diffs: NDArray[np.float64], observed: float) -> float:
    n = len(diffs)
    bits = (np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n)) & 1
    signs = (1 - 2 * bits).astype(np.float64)  # every +/-1 assignment exactly once
    sums = np.abs(signs @ diffs)
    return float(np.mean(sums >= observed * (1 - _REL_TOL)))


def _sampled_p(diffs: NDArray[np.float64], observed: float, n_resamples: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    batch = max(1, _BATCH_CELLS // len(diffs))
    hits, done = 0, 0
    while done < n_resamples:
        size = min(batch, n_resamples - done)
        signs = rng.integers(0, 2, size=(size, len(diffs))) * 2 - 1
        sums = np.abs(signs.astype(np.float64) @ diffs)
        hits += int(np.count_nonzero(sums >= observed * (1 - _REL_TOL)))
        done += size
    return (hits + 1) / (n_resamples + 1)


def bootstrap_ci(
    deltas: Sequence[float],
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of ``mean(deltas)``: resample the queries with
    replacement ``n_resamples`` times and take the central ``confidence`` share of the
    resampled means. One delta gives the degenerate interval ``(d, d)``."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must lie strictly between 0 and 1")
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    values = np.asarray(deltas, dtype=np.float64)
    n = len(values)
    if n == 0:
        raise ValueError("bootstrap_ci needs at least one delta")
    rng = np.random.default_rng(seed)
    batch = max(1, _BATCH_CELLS // n)
    means: list[NDArray[np.float64]] = []
    done = 0
    while done < n_resamples:
        size = min(batch, n_resamples - done)
        idx = rng.integers(0, n, size=(size, n))
        means.append(values[idx].mean(axis=1))
        done += size
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(np.concatenate(means), [tail, 100 - tail])
    return ConfidenceInterval(float(low), float(high), confidence)

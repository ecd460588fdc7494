"""The statistics the monitor's rules compare windows with: pure functions over plain numbers.

* ``percentile(values, q)``: linear interpolation (numpy's default), ``None`` for no values.
* ``score_drift(current, reference)``: has the distribution of top retrieval scores moved?
  The two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``, exact p-values for small
  samples): ``statistic`` D is the largest gap between the two empirical CDFs (0: same, 1:
  disjoint), ``p_value`` the chance of a gap that large if both windows came from one
  distribution. It needs no binning and no assumption about the shape of the scores (fused
  scores are bounded and skewed). The Population Stability Index over the reference's deciles
  is reported beside it (the number credit-risk and ML-ops teams read: < 0.1 stable, 0.1-0.25
  moderate, > 0.25 a shift), not used to decide.
* ``grounded_drop(current, reference)``: has the grounded share fallen? Fisher's exact test on
  the 2x2 table (grounded / not, current / reference), one-sided (a rise is no alarm), exact
  for any sample size.

Why both a p-value and an effect size decide (``rules.py``): the p-value alone fires on tiny,
harmless shifts once windows hold thousands of requests; the effect size alone fires on noise
in small windows. Requiring both keeps the false-alarm rate near the p-value threshold on
steady traffic (measured: ``bench/monitor_alarms.py``) while a real shift of the size set fires
within one window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# scipy.stats is imported where a test runs, not here: it takes ~1 s of CPU to import and every
# `ragkeel` command (a shell completion's too) imports this module through the container
PSI_BINS = 10
_PSI_FLOOR = 1e-4  # an empty bin counts as this share (the log of 0 is not a number)


@dataclass(frozen=True, slots=True)
class ScoreDrift:
    statistic: float  # KS D
    p_value: float
    psi: float
    current_mean: float
    reference_mean: float


@dataclass(frozen=True, slots=True)
class ShareDrop:
    current: float  # the grounded share in the current window
    reference: float
    drop: float  # reference - current (positive: fewer answers grounded now)
    p_value: float  # one-sided: the current share is lower


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else None


def psi(current: Sequence[float], reference: Sequence[float], bins: int = PSI_BINS) -> float:
    """Population Stability Index of ``current`` against ``reference``'s quantile bins."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_share = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    cur_share = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    r = np.maximum(ref_share / len(ref), _PSI_FLOOR)
    c = np.maximum(cur_share / len(cur), _PSI_FLOOR)
    return float(np.sum((c - r) * np.log(c / r)))


def score_drift(current: Sequence[float], reference: Sequence[float]) -> ScoreDrift:
    """KS test and PSI of ``current`` against ``reference`` (both non-empty)."""
    if not current or not reference:
        raise ValueError("score_drift needs scores in both windows")
    from scipy import stats

    result = stats.ks_2samp(current, reference)
    return ScoreDrift(
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        psi=psi(current, reference),
        current_mean=float(np.mean(current)),
        reference_mean=float(np.mean(reference)),
    )


def grounded_drop(current: tuple[int, int], reference: tuple[int, int]) -> ShareDrop:
    """``current`` and ``reference`` are (grounded, total) with totals above 0."""
    (cg, cn), (rg, rn) = current, reference
    if cn < 1 or rn < 1:
        raise ValueError("grounded_drop needs answers in both windows")
    table = [[cg, cn - cg], [rg, rn - rg]]
    from scipy import stats

    _, p_value = stats.fisher_exact(table, alternative="less")
    return ShareDrop(cg / cn, rg / rn, rg / rn - cg / cn, float(p_value))

"""Rank fusion: pure functions over ranked lists, and a registry to choose one by name.

Each fuser takes the ranked lists of several retrievers with a weight per list and returns
``{chunk_id: fused_score}``. A chunk a retriever did not return contributes nothing from it.

* ``rrf`` — reciprocal rank fusion (Cormack et al. 2009): Σ wᵢ / (k + rankᵢ).
* ``weighted`` — min-max normalise each list's scores to [0, 1] (over the list's candidates),
  then Σ wᵢ · normᵢ. Uses the score magnitudes that RRF throws away.
* ``dbsf`` — distribution-based score fusion: normalise each list by mean ± 3σ of its scores,
  clipped to [0, 1], then Σ wᵢ · normᵢ (robust to one outlier score).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence

from ragkeel.types import ScoredChunk

Fuser = Callable[[Sequence[Sequence[ScoredChunk]], Sequence[float]], dict[str, float]]


def rrf(
    lists: Sequence[Sequence[ScoredChunk]], weights: Sequence[float], k: int = 60
) -> dict[str, float]:
    fused: dict[str, float] = {}
    for hits, weight in zip(lists, weights, strict=True):
        for hit in hits:
            fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + weight / (k + hit.rank)
    return fused


def weighted(lists: Sequence[Sequence[ScoredChunk]], weights: Sequence[float]) -> dict[str, float]:
    return _sum_normalised(lists, weights, _min_max)


def dbsf(lists: Sequence[Sequence[ScoredChunk]], weights: Sequence[float]) -> dict[str, float]:
    return _sum_normalised(lists, weights, _three_sigma)


def _sum_normalised(
    lists: Sequence[Sequence[ScoredChunk]],
    weights: Sequence[float],
    normalise: Callable[[Sequence[float]], Callable[[float], float]],
) -> dict[str, float]:
    fused: dict[str, float] = {}
    for hits, weight in zip(lists, weights, strict=True):
        if not hits:
            continue
        norm = normalise([h.score for h in hits])
        for hit in hits:
            fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + weight * norm(hit.score)
    return fused


def _min_max(scores: Sequence[float]) -> Callable[[float], float]:
    low, high = min(scores), max(scores)
    if high <= low:
        return lambda _s: 1.0
    return lambda s: (s - low) / (high - low)


def _three_sigma(scores: Sequence[float]) -> Callable[[float], float]:
    if len(scores) < 2:
        return lambda _s: 1.0
    mean, sd = statistics.fmean(scores), statistics.pstdev(scores)
    if sd == 0:
        return lambda _s: 1.0
    low, high = mean - 3 * sd, mean + 3 * sd
    return lambda s: min(max((s - low) / (high - low), 0.0), 1.0)


def make_rrf(k: int) -> Fuser:
    return lambda lists, weights: rrf(lists, weights, k)


FUSERS: Mapping[str, Callable[..., Fuser]] = {
    "rrf": lambda rrf_k=60, **_: make_rrf(rrf_k),
    "weighted": lambda **_: weighted,
    "dbsf": lambda **_: dbsf,
}


def get_fuser(name: str, *, rrf_k: int = 60) -> Fuser:
    try:
        factory = FUSERS[name]
    except KeyError:
        raise ValueError(f"unknown fusion {name!r}; choose one of {sorted(FUSERS)}") from None
    return factory(rrf_k=rrf_k)


def ranked(fused: Mapping[str, float]) -> list[tuple[str, float]]:
    """Fused scores in order: score descending, then chunk id (deterministic ties)."""
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))

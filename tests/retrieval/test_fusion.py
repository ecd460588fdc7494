"""Rank fusion (``retrieval/fusion.py``): RRF, weighted (min-max) and DBSF on hand-computed
cases, then properties every fuser keeps (hypothesis): order invariance, ties, empty inputs,
one-sided results."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragkeel.retrieval.fusion import FUSERS, Fuser, dbsf, get_fuser, ranked, rrf, weighted
from ragkeel.types import ScoredChunk


def hits(*pairs: tuple[str, float]) -> list[ScoredChunk]:
    """A retriever's list: ``(id, score)`` pairs in rank order (ranks from 1)."""
    return [ScoredChunk(cid, score, rank) for rank, (cid, score) in enumerate(pairs, 1)]


KW = hits(("a", 10.0), ("b", 4.0), ("c", 1.0))
DENSE = hits(("b", 0.9), ("d", 0.5))

# -- RRF ------------------------------------------------------------------------------------


def test_rrf_by_hand() -> None:
    fused = rrf([KW, DENSE], [1.0, 1.0])
    assert fused == pytest.approx({"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 63, "d": 1 / 62})
    assert [cid for cid, _ in ranked(fused)] == ["b", "a", "d", "c"]


def test_rrf_weights_and_k() -> None:
    fused = rrf([KW, DENSE], [0.3, 0.7], k=10)
    assert fused == pytest.approx(
        {"a": 0.3 / 11, "b": 0.3 / 12 + 0.7 / 11, "c": 0.3 / 13, "d": 0.7 / 12}
    )
    assert get_fuser("rrf", rrf_k=10)([KW, DENSE], [0.3, 0.7]) == fused


def test_rrf_uses_ranks_not_scores() -> None:
    same_ranks = hits(("a", 1e6), ("b", -3.0), ("c", -1e6))
    assert rrf([same_ranks], [1.0]) == rrf([KW], [1.0])


# -- weighted (min-max) ---------------------------------------------------------------------


def test_weighted_by_hand() -> None:
    # keyword: a 10 -> 1, b 4 -> (4-1)/(10-1) = 1/3, c 1 -> 0; dense: b 0.9 -> 1, d 0.5 -> 0
    fused = weighted([KW, DENSE], [0.5, 0.5])
    assert fused == pytest.approx({"a": 0.5, "b": 0.5 / 3 + 0.5, "c": 0.0, "d": 0.0})
    assert [cid for cid, _ in ranked(fused)] == ["b", "a", "c", "d"]  # c, d tie: by id


def test_weighted_uses_score_magnitudes() -> None:
    # RRF sees only ranks; min-max sees that a is far ahead of b in keyword scores
    close = hits(("a", 10.0), ("b", 9.9), ("c", 0.0))
    far = hits(("a", 10.0), ("b", 0.1), ("c", 0.0))
    assert rrf([close], [1.0]) == rrf([far], [1.0])
    assert weighted([close], [1.0])["b"] == pytest.approx(0.99)
    assert weighted([far], [1.0])["b"] == pytest.approx(0.01)


def test_weighted_one_hit_or_equal_scores_normalise_to_one() -> None:
    assert weighted([hits(("a", 3.0))], [0.4]) == pytest.approx({"a": 0.4})
    assert weighted([hits(("a", 2.0), ("b", 2.0))], [1.0]) == {"a": 1.0, "b": 1.0}


# -- DBSF -----------------------------------------------------------------------------------


def test_dbsf_by_hand() -> None:
    # scores 3, 2, 1: mean 2, population sd sqrt(2/3); range mean ± 3 sd = 2 ± sqrt(6)
    low, high = 2 - math.sqrt(6), 2 + math.sqrt(6)
    fused = dbsf([hits(("a", 3.0), ("b", 2.0), ("c", 1.0))], [1.0])
    assert fused == pytest.approx(
        {"a": (3 - low) / (high - low), "b": 0.5, "c": (1 - low) / (high - low)}
    )
    assert fused["a"] == pytest.approx(0.5 + 1 / (2 * math.sqrt(6)))


def test_dbsf_clips_an_outlier() -> None:
    # ten zeros and one 100: mean 100/11, sd = sqrt(10000/11 - (100/11)^2) = 100 sqrt(10)/11
    # 100 is above mean + 3 sd (z = sqrt(10) > 3): clipped to 1; the zeros all get the same value
    scores = [("x", 100.0)] + [(f"z{i}", 0.0) for i in range(10)]
    fused = dbsf([hits(*scores)], [1.0])
    mean, sd = 100 / 11, 100 * math.sqrt(10) / 11
    assert fused["x"] == 1.0
    assert fused["z0"] == pytest.approx((0 - (mean - 3 * sd)) / (6 * sd))
    # min-max would have put the zeros at 0: DBSF keeps them apart from "not found"
    assert weighted([hits(*scores)], [1.0])["z0"] == 0.0


def test_dbsf_degenerate_lists() -> None:
    assert dbsf([hits(("a", 5.0))], [2.0]) == {"a": 2.0}  # one score: no spread
    assert dbsf([hits(("a", 5.0), ("b", 5.0))], [1.0]) == {"a": 1.0, "b": 1.0}  # sd 0


# -- registry -------------------------------------------------------------------------------


def test_registry_names_and_unknown_fuser() -> None:
    assert sorted(FUSERS) == ["dbsf", "rrf", "weighted"]
    assert get_fuser("weighted") is weighted and get_fuser("dbsf") is dbsf
    assert get_fuser("rrf")([KW], [1.0]) == rrf([KW], [1.0], k=60)
    with pytest.raises(ValueError, match="unknown fusion 'magic'"):
        get_fuser("magic")


def test_weights_must_match_lists() -> None:
    for fuser in (rrf, weighted, dbsf):
        with pytest.raises(ValueError):
            fuser([KW, DENSE], [1.0])


# -- properties -----------------------------------------------------------------------------

IDS = st.sampled_from([f"c{i}" for i in range(12)])  # few ids: lists overlap often
SCORE = st.floats(min_value=-50, max_value=50, allow_nan=False).map(lambda s: round(s, 2))
WEIGHT = st.floats(min_value=0, max_value=3, allow_nan=False)
NAMES = sorted(FUSERS)


@st.composite
def ranked_lists(draw: st.DrawFn) -> list[ScoredChunk]:
    """One retriever's hits: distinct ids, scores descending (ties allowed), ranks 1..n."""
    chunk_ids = draw(st.lists(IDS, unique=True, max_size=8))
    scores = sorted(draw(st.lists(SCORE, min_size=len(chunk_ids), max_size=len(chunk_ids))))
    return hits(*zip(chunk_ids, reversed(scores), strict=True))


def fuser_named(name: str) -> Fuser:
    return get_fuser(name)


def upper_bound(name: str, weights: Sequence[float]) -> float:
    return sum(weights) / 61 if name == "rrf" else sum(weights)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(NAMES), st.lists(st.tuples(ranked_lists(), WEIGHT), max_size=4), st.randoms()
)
def test_order_of_lists_and_of_hits_does_not_matter(
    name: str, weighted_lists: list[tuple[list[ScoredChunk], float]], rnd: random.Random
) -> None:
    fuser = fuser_named(name)
    lists, weights = [h for h, _ in weighted_lists], [w for _, w in weighted_lists]
    expected = fuser(lists, weights)
    shuffled = list(weighted_lists)
    rnd.shuffle(shuffled)
    for h, _ in shuffled:
        rnd.shuffle(h)  # a list's hits carry their own rank
    got = fuser([h for h, _ in shuffled], [w for _, w in shuffled])
    assert got.keys() == expected.keys()
    for cid, score in expected.items():
        assert got[cid] == pytest.approx(score, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(NAMES), st.lists(st.tuples(ranked_lists(), WEIGHT), max_size=4))
def test_every_found_chunk_is_scored_within_bounds(
    name: str, weighted_lists: list[tuple[list[ScoredChunk], float]]
) -> None:
    lists, weights = [h for h, _ in weighted_lists], [w for _, w in weighted_lists]
    fused = get_fuser(name)(lists, weights)
    assert set(fused) == {h.chunk_id for hs in lists for h in hs}
    assert all(0.0 <= s <= upper_bound(name, weights) + 1e-9 for s in fused.values())


@given(st.sampled_from(NAMES), st.lists(WEIGHT, max_size=3))
def test_empty_inputs_fuse_to_nothing(name: str, weights: list[float]) -> None:
    fuser = get_fuser(name)
    assert fuser([], []) == {}
    assert fuser([[] for _ in weights], weights) == {}
    assert ranked({}) == []


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(NAMES),
    ranked_lists(),
    st.floats(min_value=0.01, max_value=3),
    st.floats(min_value=0, max_value=3),
    st.booleans(),
)
def test_one_sided_results_keep_that_retrievers_order(
    name: str, one: list[ScoredChunk], weight: float, other_weight: float, keyword_side: bool
) -> None:
    lists = [one, []] if keyword_side else [[], one]
    weights = [weight, other_weight] if keyword_side else [other_weight, weight]
    order = [cid for cid, _ in ranked(get_fuser(name)(lists, weights))]
    assert sorted(order) == sorted(h.chunk_id for h in one)
    position = {cid: i for i, cid in enumerate(order)}
    for better, worse in itertools.pairwise(one):
        if name == "rrf" or better.score > worse.score:  # rrf: by rank; the others: by score
            assert position[better.chunk_id] < position[worse.chunk_id]
        else:  # equal scores tie, and ties are broken by chunk id
            assert (position[better.chunk_id] < position[worse.chunk_id]) == (
                better.chunk_id < worse.chunk_id
            )


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(NAMES), st.floats(min_value=0.01, max_value=3), SCORE, SCORE)
def test_mirror_image_hits_tie_and_ties_break_by_id(
    name: str, weight: float, high: float, low: float
) -> None:
    # "x" first for one retriever and second for the other, "y" the reverse: with equal weights
    # and the same scores they tie, and ranked() puts the smaller id first
    high, low = max(high, low), min(high, low)
    one = hits(("y", high), ("x", low))
    other = hits(("x", high), ("y", low))
    fused = get_fuser(name)([one, other], [weight, weight])
    assert fused["x"] == pytest.approx(fused["y"])
    assert ranked({"y": 1.0, "x": 1.0}) == [("x", 1.0), ("y", 1.0)]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(NAMES), ranked_lists(), ranked_lists())
def test_a_zero_weight_list_adds_nothing(
    name: str, counted: list[ScoredChunk], ignored: list[ScoredChunk]
) -> None:
    fuser = get_fuser(name)
    alone = fuser([counted], [1.0])
    fused = fuser([counted, ignored], [1.0, 0.0])
    for cid, score in fused.items():
        assert score == pytest.approx(alone.get(cid, 0.0))

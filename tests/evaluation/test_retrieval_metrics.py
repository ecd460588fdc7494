"""Retrieval metrics: hand-computed golden cases, then every per-query value against pytrec_eval."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pytrec_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from ragkeel.errors import ConfigError, DatasetError
from ragkeel.evaluation.metrics.retrieval import (
    DEFAULT_METRICS,
    Qrels,
    Run,
    evaluate,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    trec_ranking,
)

TOL = 1e-9
PYTREC_MEASURES = {"ndcg_cut.10", "recall.10", "recall.100", "P.10"}
# our metric name -> pytrec_eval result key
OURS_TO_PYTREC = {
    "ndcg_cut_10": "ndcg_cut_10",
    "recall_10": "recall_10",
    "recall_100": "recall_100",
    "P_10": "P_10",
}


# ---------------------------------------------------------------- golden cases


def test_graded_ndcg_uses_linear_gain() -> None:
    relevance = {"a": 2, "b": 1, "c": 0}
    scores = {"a": 0.1, "b": 0.9, "c": 0.5, "x": 0.3}  # order: b, c, x, a
    expected = (1 / math.log2(2) + 2 / math.log2(5)) / (2 / math.log2(2) + 1 / math.log2(3))
    assert ndcg_at_k(relevance, scores, 10) == pytest.approx(expected, abs=TOL)
    assert ndcg_at_k(relevance, scores, 1) == pytest.approx(1 / 2, abs=TOL)


def test_recall_precision_mrr_by_hand() -> None:
    relevance = {"a": 2, "b": 1, "c": 0}
    scores = {"a": 0.1, "b": 0.9, "c": 0.5, "x": 0.3}
    assert recall_at_k(relevance, scores, 1) == 0.5
    assert recall_at_k(relevance, scores, 3) == 0.5
    assert recall_at_k(relevance, scores, 4) == 1.0
    assert precision_at_k(relevance, scores, 2) == 0.5
    assert mrr_at_k(relevance, scores, 10) == 1.0
    assert mrr_at_k({"a": 1}, scores, 3) == 0.0
    assert mrr_at_k({"a": 1}, scores, 4) == 0.25


def test_precision_divides_by_k_when_run_is_short() -> None:
    assert precision_at_k({"a": 1}, {"a": 3.0, "b": 2.0}, 10) == pytest.approx(0.1)


def test_ties_break_on_doc_id_descending() -> None:
    scores = {"a": 1.0, "d10": 1.0, "d9": 1.0, "z": 0.5}
    assert trec_ranking(scores) == ["d9", "d10", "a", "z"]
    assert mrr_at_k({"d9": 1}, scores, 10) == 1.0
    assert mrr_at_k({"a": 1}, scores, 10) == pytest.approx(1 / 3)


def test_scores_are_compared_as_float32_like_trec_eval() -> None:
    # trec_eval keeps scores in a C float: these pairs tie and fall back to doc id descending.
    assert trec_ranking({"a": 1.0, "b": 1.0 - 1e-9}) == ["b", "a"]
    assert trec_ranking({"a": 1e-50, "b": 0.0}) == ["b", "a"]
    assert trec_ranking({"a": 1e300, "b": 1e39}) == ["b", "a"]  # both +inf in float32
    # ...and these do not tie.
    assert trec_ranking({"a": 1.0, "b": 1.0 - 1e-7}) == ["a", "b"]
    assert trec_ranking({"a": 1e-40, "b": 0.0}) == ["a", "b"]  # float32 subnormal
    assert trec_ranking({"a": 1e39, "b": 1e38}) == ["a", "b"]


def test_nan_scores_cannot_be_ranked() -> None:
    with pytest.raises(DatasetError, match="'b' has a NaN score"):
        trec_ranking({"a": 1.0, "b": float("nan")})


def test_non_positive_grades_give_no_gain_and_are_not_relevant() -> None:
    relevance = {"a": -1, "b": 2, "c": 0}
    scores = {"a": 3.0, "c": 2.0, "b": 1.0}
    assert ndcg_at_k(relevance, scores, 10) == pytest.approx(1 / math.log2(4), abs=TOL)
    assert recall_at_k(relevance, scores, 10) == 1.0
    assert mrr_at_k(relevance, scores, 10) == pytest.approx(1 / 3)


def test_no_relevant_documents_scores_zero() -> None:
    relevance = {"a": 0}
    scores = {"a": 1.0}
    for metric in (ndcg_at_k, recall_at_k, precision_at_k, mrr_at_k):
        assert metric(relevance, scores, 10) == 0.0


def test_evaluate_counts_missing_queries_as_zero_and_skips_unjudgeable_ones() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    run = {"q1": {"a": 1.0, "x": 0.5}, "q4": {"b": 1.0}}
    result = evaluate(qrels, run, ["mrr_10", "recip_rank_10", "P_1"])
    assert result.n_queries == 2
    assert result.means == {"mrr_10": 0.5, "recip_rank_10": 0.5, "P_1": 0.5}
    assert result.per_query["q2"] == {"mrr_10": 0.0, "recip_rank_10": 0.0, "P_1": 0.0}
    assert "q3" not in result.per_query


@pytest.mark.parametrize("name", ["ndcg_10", "recall", "P_0", "mrr_x", "map", "P_¹"])
def test_unknown_metric_names_are_rejected(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown retrieval metric"):
        evaluate({"q": {"a": 1}}, {}, [name])


def test_k_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        ndcg_at_k({"a": 1}, {"a": 1.0}, 0)


def test_qrels_without_relevant_documents_cannot_be_averaged() -> None:
    with pytest.raises(DatasetError):
        evaluate({"q": {"a": 0}}, {"q": {"a": 1.0}})


# ---------------------------------------------------------------- against pytrec_eval


def pytrec_per_query(qrels: Qrels, run: Run) -> dict[str, dict[str, float]]:
    """pytrec_eval's values, with recip_rank computed on the run cut to its top 10."""
    qrels_d = {q: dict(d) for q, d in qrels.items()}
    values: dict[str, dict[str, float]] = pytrec_eval.RelevanceEvaluator(
        qrels_d, PYTREC_MEASURES
    ).evaluate({q: dict(s) for q, s in run.items()})
    top10 = {q: {d: s[d] for d in trec_ranking(s)[:10]} for q, s in run.items()}
    mrr = pytrec_eval.RelevanceEvaluator(qrels_d, {"recip_rank"}).evaluate(top10)
    for qid, measures in mrr.items():
        values[qid]["mrr_10"] = measures["recip_rank"]
    return values


def assert_matches_pytrec(qrels: Qrels, run: Run) -> None:
    reference = pytrec_per_query(qrels, run)
    for qid, ref in reference.items():  # every query pytrec_eval scores, judgeable or not
        relevance, scores = qrels[qid], run[qid]
        ours = {
            "ndcg_cut_10": ndcg_at_k(relevance, scores, 10),
            "recall_10": recall_at_k(relevance, scores, 10),
            "recall_100": recall_at_k(relevance, scores, 100),
            "P_10": precision_at_k(relevance, scores, 10),
            "mrr_10": mrr_at_k(relevance, scores, 10),
        }
        for name, value in ours.items():
            ref_key = OURS_TO_PYTREC.get(name, name)
            assert abs(value - ref[ref_key]) <= TOL, (qid, name, value, ref[ref_key])

    if not any(g >= 1 for judged in qrels.values() for g in judged.values()):
        return
    result = evaluate(qrels, run, DEFAULT_METRICS)
    for qid, values in result.per_query.items():
        for name, value in values.items():
            expected = reference[qid][OURS_TO_PYTREC.get(name, name)] if qid in reference else 0.0
            assert abs(value - expected) <= TOL, (qid, name, value, expected)
    for name in DEFAULT_METRICS:
        expected_mean = sum(v[name] for v in result.per_query.values()) / result.n_queries
        assert abs(result.means[name] - expected_mean) <= TOL


def random_case(seed: int) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    """Graded qrels and a tie-heavy run; some queries unjudgeable, missing or short."""
    rng = np.random.default_rng(seed)
    pool = [f"d{i}" for i in range(int(rng.integers(5, 160)))]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(int(rng.integers(1, 8))):
        qid = f"q{q}"
        judged = rng.choice(pool, size=int(rng.integers(1, min(len(pool), 30) + 1)), replace=False)
        grades = rng.choice([0, 1, 2], len(judged))
        qrels[qid] = {str(d): int(g) for d, g in zip(judged, grades, strict=True)}
        if rng.random() < 0.15:
            continue  # query missing from the run
        retrieved = rng.choice(pool, size=int(rng.integers(1, len(pool) + 1)), replace=False)
        if rng.random() < 0.5:  # few distinct scores: many ties
            scores = rng.integers(0, 4, len(retrieved)).astype(float)
        else:
            scores = rng.normal(size=len(retrieved))
        run[qid] = {str(d): float(s) for d, s in zip(retrieved, scores, strict=True)}
    run["not-judged"] = {"d0": 1.0}
    return qrels, run


@pytest.mark.parametrize("seed", range(200))
def test_random_cases_match_pytrec_eval(seed: int) -> None:
    qrels, run = random_case(seed)
    assert_matches_pytrec(qrels, run)


doc_ids = st.text(alphabet="abAB019_-.é", min_size=1, max_size=4)
scores_st = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, -1.0]),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
)


@st.composite
def single_query_case(draw: st.DrawFn) -> tuple[Qrels, Run]:
    relevance = draw(st.dictionaries(doc_ids, st.sampled_from([-1, 0, 1, 2]), min_size=1))
    scores = draw(st.dictionaries(doc_ids, scores_st, min_size=1, max_size=30))
    return {"q": relevance}, {"q": scores}


@settings(max_examples=400, deadline=None)
@given(single_query_case())
def test_property_matches_pytrec_eval(case: tuple[Qrels, Run]) -> None:
    qrels, run = case
    assert_matches_pytrec(qrels, run)

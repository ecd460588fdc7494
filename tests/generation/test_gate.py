"""The gate rule on hand-built confidence signals."""

from __future__ import annotations

from ragkeel.generation.gate import DEFAULT_DENSE_THRESHOLD, AnswerGate
from ragkeel.types import Confidence, SearchResult

from .conftest import hit


def result(dense: float | None, keyword: float | None, hits: int = 1) -> SearchResult:
    confidence = Confidence(1.0, 0.0, dense, keyword, False)
    return SearchResult("q", "hybrid", tuple(hit(f"c{i}", "x") for i in range(hits)), confidence)


def test_dense_cosine_opens_the_gate_at_the_threshold() -> None:
    gate = AnswerGate(0.3)
    assert gate.decide(result(0.3, None)).passed
    refused = gate.decide(result(0.29, 50.0))  # BM25 alone cannot open it by default
    assert not refused.passed and refused.reason == "low_confidence"
    assert (refused.top_dense, refused.top_keyword, refused.dense_threshold) == (0.29, 50.0, 0.3)


def test_keyword_threshold_is_an_opt_in_second_door() -> None:
    gate = AnswerGate(0.9, keyword_threshold=5.0)
    assert gate.decide(result(0.1, 5.0)).reason == "keyword"
    assert gate.decide(result(0.95, None)).reason == "dense"
    assert not gate.decide(result(0.1, 4.9)).passed
    assert not gate.decide(result(None, None)).passed


def test_no_hits_always_refuses() -> None:
    decision = AnswerGate(-1.0, keyword_threshold=0.0).decide(result(0.9, 9.0, hits=0))
    assert not decision.passed and decision.reason == "no_hits"


def test_default_threshold_matches_the_settings_default() -> None:
    from ragkeel.settings import GenerationSettings

    assert (
        AnswerGate().dense_threshold
        == DEFAULT_DENSE_THRESHOLD
        == GenerationSettings().gate_threshold
    )

"""Confidence signals (``retrieval/confidence.py``): what the answer gate sees of a search."""

from __future__ import annotations

from ragkeel.retrieval.confidence import confidence_of
from ragkeel.types import Chunk, Confidence, ScoredChunk, SearchHit


def hit(chunk_id: str, score: float) -> SearchHit:
    return SearchHit(Chunk(chunk_id, "doc", "c", 0, "text", 0, 4), score)


def test_nothing_found() -> None:
    assert confidence_of([], [], []) == Confidence(
        top_score=0.0, margin=0.0, top_dense_score=None, top_keyword_score=None, agreement=False
    )


def test_one_hit_has_no_margin() -> None:
    signals = confidence_of([hit("a", 0.7)], [ScoredChunk("a", 3.2, 1)], [])
    assert (signals.top_score, signals.margin) == (0.7, 0.0)
    assert signals.top_keyword_score == 3.2 and signals.top_dense_score is None
    assert not signals.agreement  # one retriever alone cannot agree


def test_margin_is_top_minus_second_fused_score() -> None:
    signals = confidence_of([hit("a", 0.9), hit("b", 0.6), hit("c", 0.1)], [], [])
    assert signals.top_score == 0.9
    assert abs(signals.margin - 0.3) < 1e-12


def test_top_scores_come_from_each_retrievers_first_hit() -> None:
    keyword = [ScoredChunk("k1", 7.5, 1), ScoredChunk("k2", 2.0, 2)]
    dense = [ScoredChunk("d1", 0.83, 1), ScoredChunk("k1", 0.41, 2)]
    signals = confidence_of([hit("k1", 0.8), hit("d1", 0.7)], keyword, dense)
    assert (signals.top_keyword_score, signals.top_dense_score) == (7.5, 0.83)
    assert not signals.agreement  # k1 vs d1


def test_agreement_when_both_retrievers_put_the_same_chunk_first() -> None:
    keyword = [ScoredChunk("a", 5.0, 1), ScoredChunk("b", 1.0, 2)]
    dense = [ScoredChunk("a", 0.9, 1)]
    assert confidence_of([hit("a", 1.0)], keyword, dense).agreement
    assert not confidence_of([hit("a", 1.0)], keyword, []).agreement
    assert not confidence_of([hit("a", 1.0)], [], dense).agreement

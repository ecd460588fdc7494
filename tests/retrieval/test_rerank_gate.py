"""``RerankGate``: which fused rankings are ambiguous enough to rerank, from the confidence
signals alone (hand-built cases, one per condition and per boundary)."""

from __future__ import annotations

import pytest

from ragkeel.retrieval.rerank import RerankGate
from ragkeel.types import Confidence


def signals(
    margin: float = 0.5,
    *,
    top: float = 0.9,
    agree: bool = True,
    dense: float | None = 0.6,
    keyword: float | None = 12.0,
) -> Confidence:
    return Confidence(
        top_score=top,
        margin=margin,
        top_dense_score=dense,
        top_keyword_score=keyword,
        agreement=agree,
    )


@pytest.mark.parametrize(
    "confidence,expected",
    [
        (signals(0.5), (False, "confident")),
        (signals(0.09), (True, "low_margin")),
        (signals(0.1), (False, "confident")),  # the threshold itself is not below it
        (signals(0.0), (True, "low_margin")),
        (signals(0.5, agree=False), (True, "disagreement")),
        # one retriever found nothing: no disagreement to speak of
        (signals(0.5, agree=False, keyword=None), (False, "confident")),
        (signals(0.5, agree=False, dense=None), (False, "confident")),
    ],
)
def test_default_gate(confidence: Confidence, expected: tuple[bool, str]) -> None:
    assert RerankGate(margin_below=0.1).decide(confidence, candidates=20) == expected


def test_low_margin_is_named_before_disagreement() -> None:
    assert RerankGate(0.1).decide(signals(0.01, agree=False), 20) == (True, "low_margin")


def test_disagreement_can_be_ignored() -> None:
    gate = RerankGate(0.1, on_disagreement=False)
    assert gate.decide(signals(0.5, agree=False), 20) == (False, "confident")


def test_low_top_score_is_off_unless_set() -> None:
    weak = signals(0.5, top=0.3)
    assert RerankGate(0.1).decide(weak, 20) == (False, "confident")
    assert RerankGate(0.1, top_score_below=0.4).decide(weak, 20) == (True, "low_top_score")


def test_always_reranks_but_not_a_single_candidate() -> None:
    gate = RerankGate(0.1, always=True)
    assert gate.decide(signals(0.9), 20) == (True, "always")
    assert gate.decide(signals(0.0), 1) == (False, "few_hits")
    assert gate.decide(signals(0.0), 0) == (False, "few_hits")


def test_a_zero_threshold_never_reranks_on_margin() -> None:
    assert RerankGate(0.0, on_disagreement=False).decide(signals(0.0), 20) == (False, "confident")

"""``retrieval.rerank`` settings (issue 15): off by default, and a remote reranker that cannot
work is refused at start-up with the key named, not at the first question."""

from __future__ import annotations

import pytest

from ragkeel.container import Container
from ragkeel.errors import ConfigError
from ragkeel.settings import load_settings


def test_off_by_default_builds_no_reranker() -> None:
    settings = load_settings(embedding={"provider": "hashing"})
    assert settings.retrieval.rerank.provider == "none"
    with Container(settings) as c:
        assert c.reranker is None and c.conditional_reranker is None
        assert c.retriever.reranker is None


@pytest.mark.parametrize(
    "rerank,named",
    [
        ({"provider": "remote", "shape": "tei"}, "retrieval.rerank.url"),
        ({"provider": "remote", "shape": "cohere", "url": "http://127.0.0.1:1/v2/rerank"}, "model"),
        (
            {"provider": "remote", "shape": "tei", "url": "http://x/rerank", "candidates": 1},
            "candidates",
        ),
        ({"shape": "voyage"}, "shape"),
    ],
)
def test_a_reranker_that_cannot_work_is_refused(rerank: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(retrieval={"rerank": rerank})


def test_the_gate_and_the_policies_come_from_the_settings() -> None:
    rerank = {
        "provider": "remote",
        "shape": "tei",
        "url": "http://127.0.0.1:1/rerank",
        "candidates": 7,
        "top_n": 3,
        "gate": {"margin_below": 0.02, "on_disagreement": False},
    }
    with Container(
        load_settings(embedding={"provider": "hashing"}, retrieval={"rerank": rerank})
    ) as c:
        conditional = c.conditional_reranker
        assert conditional is not None and c.retriever.reranker is conditional
        assert (conditional.candidates, conditional.top_n) == (7, 3)
        assert (conditional.gate.margin_below, conditional.gate.on_disagreement) == (0.02, False)
        assert conditional.reranker.name == "rerank:tei"

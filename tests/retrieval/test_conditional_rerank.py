"""Conditional reranking end to end (issue 15): a container over a real SQLite store (hashing
embedder, the shared test corpus) whose ``retrieval.rerank`` points at ``FaultServer``'s TEI
``/rerank`` on 127.0.0.1. The gate reranks or skips as configured; a reranked search follows the
server's order; every failure — a 503 after the retries, a malformed body, an open breaker —
keeps the fused order, marked in the result and in the answer's trace, never an error; the
answer still comes; ``/metrics`` counts the decisions; the call is a RERANKER span."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corpus import COLLECTION, ON_TOPIC, TEST_GATE, write_corpus
from ragkeel.api.app import create_app
from ragkeel.container import Container
from ragkeel.observability import names
from ragkeel.settings import load_settings
from ragkeel.storage.filters import Filter
from ragkeel.testing import FaultServer
from ragkeel.testing.otlp_sink import OtlpSink
from ragkeel.testing.rerank_replies import overlap_scores
from ragkeel.types import SearchResult

K = 2  # of the corpus' 4 chunks: the candidates (up to 6) go past k
# a question whose fused top hit is not the chunk with most of its words (so a rerank shows)
QUESTION = "revoked key stops working within one minute"


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault_server:
        yield fault_server


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "docs")


def container(home: Path, docs: Path, rerank: dict[str, Any] | None, **more: Any) -> Container:
    settings = load_settings(
        home=home,
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 32},
        generation={"gate_threshold": TEST_GATE, "provider": "none"},
        retrieval={"rerank": rerank} if rerank else {},
        cache={"enabled": False},
        **more,
    )
    c = Container(settings)
    assert c.pipeline.ingest([str(docs)], COLLECTION).exit_code == 0
    return c


def remote(server: FaultServer, **options: Any) -> dict[str, Any]:
    return {
        "provider": "remote",
        "shape": "tei",
        "url": f"http://127.0.0.1:{server.port}/rerank",
        "candidates": 6,
        "max_retries": 1,
        "timeout_s": 1.0,
        **options,
    }


def search(c: Container, question: str = QUESTION) -> SearchResult:
    return c.retriever.search(question, K, flt=Filter(collection=COLLECTION))


def ids(result: SearchResult) -> list[str]:
    return [h.chunk.id for h in result.hits]


@pytest.fixture
def fused(tmp_path: Path, docs: Path) -> Iterator[SearchResult]:
    """The same search without a reranker (its own home: the same corpus, the same ids)."""
    c = container(tmp_path / "plain", docs, None)
    yield search(c)
    c.close()


def test_a_reranked_search_follows_the_rerankers_order(
    tmp_path: Path, docs: Path, server: FaultServer, fused: SearchResult
) -> None:
    c = container(tmp_path / "home", docs, remote(server, always=True))
    result = search(c)
    c.close()
    outcome = result.rerank
    assert outcome is not None and (outcome.decision, outcome.reason) == ("applied", "always")
    [(path, body)] = server.rerank_requests
    assert path == "/rerank" and body["query"] == QUESTION
    sent = body["texts"]
    assert outcome.candidates == len(sent) == 4  # every chunk: fewer than `candidates`
    scores = overlap_scores(QUESTION, sent)
    expected = sorted(range(len(sent)), key=lambda i: (-scores[i], i))[:K]
    assert [h.chunk.index_text() for h in result.hits] == [sent[i] for i in expected]
    assert [h.rerank_score for h in result.hits] == [scores[i] for i in expected]
    assert result.confidence == fused.confidence  # the fused ranking's signals, unchanged
    assert outcome.top_changed == (ids(result)[0] != ids(fused)[0])
    assert outcome.latency_ms > 0 and result.timings_ms["rerank_ms"] > 0
    assert outcome.calls is not None and [a["outcome"] for a in outcome.calls["attempts"]] == ["ok"]


def test_a_confident_ranking_is_not_reranked(
    tmp_path: Path, docs: Path, server: FaultServer, fused: SearchResult
) -> None:
    gate = {"margin_below": 0.0, "on_disagreement": False}
    c = container(tmp_path / "home", docs, remote(server, gate=gate))
    result = search(c)
    c.close()
    assert result.rerank is not None
    assert (result.rerank.decision, result.rerank.reason) == ("skipped", "confident")
    assert result.rerank.margin == fused.confidence.margin
    assert server.stats.requests == 0
    assert ids(result) == ids(fused) and all(h.rerank_score is None for h in result.hits)
    assert "rerank_ms" not in result.timings_ms


def test_an_ambiguous_ranking_is_reranked(tmp_path: Path, docs: Path, server: FaultServer) -> None:
    c = container(tmp_path / "home", docs, remote(server, gate={"margin_below": 10.0}))
    result = search(c)
    c.close()
    assert result.rerank is not None
    assert (result.rerank.decision, result.rerank.reason) == ("applied", "low_margin")
    assert server.stats.requests == 1


@pytest.mark.parametrize(
    "fault,code,calls",
    [
        ({"error_rate": 1.0, "error": "503"}, "MODEL_UNAVAILABLE", 2),  # first try + one retry
        ({"rerank_fault": "index_out_of_range"}, "RERANK_RESPONSE_INVALID", 1),
        ({"down": True}, "MODEL_UNAVAILABLE", 0),  # reset before the request is read
    ],
)
def test_a_failure_keeps_the_fused_order(
    tmp_path: Path,
    docs: Path,
    server: FaultServer,
    fused: SearchResult,
    fault: dict[str, Any],
    code: str,
    calls: int,
) -> None:
    server.set(**fault)
    c = container(tmp_path / "home", docs, remote(server, always=True))
    result = search(c)
    c.close()
    outcome = result.rerank
    assert outcome is not None and (outcome.decision, outcome.error) == ("failed", code)
    assert ids(result) == ids(fused)
    assert [h.score for h in result.hits] == [h.score for h in fused.hits]
    assert server.stats.requests == calls


def test_the_breaker_opens_and_answers_still_come(
    tmp_path: Path, docs: Path, server: FaultServer
) -> None:
    server.set(error_rate=1.0, error="503")
    c = container(
        tmp_path / "home",
        docs,
        remote(server, always=True, max_retries=0),
        gateway={"breaker": {"consecutive_failures": 2}},
    )
    with TestClient(create_app(c)) as client:
        errors = []
        for _ in range(4):
            r = client.post(
                "/v1/query",
                json={"question": ON_TOPIC, "collection": COLLECTION, "mode": "extractive"},
            )
            assert r.status_code == 200, r.text
            assert r.json()["mode"] == "extractive" and r.json()["citations"]
            trace = c.traces.get(r.json()["trace_id"])
            assert trace is not None and trace.gateway is not None
            rerank = trace.gateway["rerank"]
            assert rerank["decision"] == "failed"
            assert trace.attributes()[names.RERANK_DECISION] == "failed"
            errors.append(rerank["error"])
        metrics = client.get("/metrics").text
    assert errors == ["MODEL_UNAVAILABLE"] * 2 + ["CIRCUIT_OPEN"] * 2
    assert server.stats.requests == 2  # the open breaker refused the rest without a call
    assert 'ragkeel_rerank_total{decision="failed",reason="always"} 4.0' in metrics
    assert 'ragkeel_breaker_state{deployment="rerank:tei",state="open"} 1.0' in metrics
    assert 'deployment="rerank:tei",outcome="rejected"} 2.0' in metrics


def test_the_rerank_call_is_a_reranker_span_and_sends_the_traceparent(
    tmp_path: Path, docs: Path, server: FaultServer
) -> None:
    with OtlpSink() as sink:
        c = container(
            tmp_path / "home",
            docs,
            remote(server, always=True),
            observability={"otlp": {"endpoint": sink.endpoint, "timeout_s": 1.0}},
        )
        with TestClient(create_app(c)) as client:
            r = client.post(
                "/v1/query",
                json={"question": ON_TOPIC, "collection": COLLECTION, "mode": "extractive"},
            )
            assert r.status_code == 200, r.text
            assert c.tracer.flush(5)
        [span] = sink.named("rerank rerank:tei")
        [root] = sink.named("POST /v1/query")
    assert span.parent_span_id == root.span_id and span.kind == 3  # client
    attrs = span.attributes
    assert attrs[names.OI_SPAN_KIND] == "RERANKER"
    assert attrs[names.RERANKER_MODEL_NAME] == "rerank:tei"
    assert attrs[names.RERANK_DOCUMENTS] == 4 and attrs[names.GATEWAY_OUTCOME] == "ok"
    assert root.attributes[names.RERANK_DECISION] == "applied"
    [traceparent] = server.traceparents
    assert traceparent is not None and span.span_id in traceparent

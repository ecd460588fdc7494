"""Fixtures for trace tests: a tiny real index (SQLite on ``tmp_path``, the hashing embedder,
the hybrid retriever) and a fully populated ``Trace``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

import corpus
from corpus import KEYS_AND_OUTAGE
from corpus import OFF_TOPIC as OFF_TOPIC
from corpus import ON_TOPIC as ON_TOPIC
from corpus import TEST_GATE as TEST_GATE
from ragkeel.observability.trace import (
    Outcome,
    PromptRecord,
    RetrievedChunk,
    Trace,
)
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import Citation, GateDecision

PROMPT = "[system]\nAnswer from the sources.\n\n[user]\n[1] API keys\nRotate...\n\nQuestion: ?"


def write_corpus(root: Path) -> Path:
    """The two-document corpus written into ``root``."""
    return corpus.write_corpus(root, KEYS_AND_OUTAGE)


@pytest.fixture
def retriever(tmp_path: Path) -> Iterator[HybridRetriever]:
    store = SqliteDocumentStore(tmp_path / "db" / "ragkeel.db")
    r = corpus.index_corpus(store, tmp_path / "docs", KEYS_AND_OUTAGE)
    yield r
    r.close()
    store.close()


def full_trace(outcome: Outcome = "answered", **changes: object) -> Trace:
    """A trace with every field set (values chosen to survive a JSON round trip exactly)."""
    trace = Trace(
        route="cli.ask",
        question="How often should I rotate an API key? ✓",
        outcome=outcome,
        mode="generative",
        model="scripted",
        template_version="answer_v1",
        grounded=True,
        input_tokens=120,
        output_tokens=12,
        cost=0.000125,
        latency_ms={"embed": 1.25, "keyword": 0.5, "dense": 0.75, "total": 42.125},
        retrieved=(
            RetrievedChunk("c1", "d1", 0.91, 1, 7.5, 2, 0.41),
            RetrievedChunk("c2", "d2", 0.33, None, None, 1, 0.44),
        ),
        gate=GateDecision(True, "dense", 0.44, 7.5, 0.3, None),
        prompt=PromptRecord.of(PROMPT, tokens=30, keep_text=True),
        output="Rotate every API key every ninety days [1].",
        citations=(
            Citation(
                number=1,
                chunk_id="c1",
                document_id="d1",
                source="/docs/keys.md",
                title="API keys",
                page=None,
                snippet="Rotate every...",
            ),
        ),
    )
    return dataclasses.replace(trace, **changes)  # type: ignore[arg-type]

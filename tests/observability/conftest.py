"""Fixtures for trace tests: a tiny real index (SQLite on ``tmp_path``, the hashing embedder,
the hybrid retriever) and a fully populated ``Trace``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.observability.trace import (
    CitationRecord,
    GateRecord,
    Outcome,
    PromptRecord,
    RetrievedChunk,
    Trace,
)
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.sqlite import SqliteDocumentStore

CORPUS = {
    "keys.md": (
        "# API keys\n\nRotate every API key every ninety days. Rotation is done from the admin "
        "console under Security.\n\n## Revoking keys\n\nRevoke a leaked key at once. A revoked "
        "key stops working within one minute.\n"
    ),
    "outage.txt": (
        "Upstream outage postmortem.\n\nOn 3 March the model provider failed for forty minutes. "
        "Fallback models served answers during the outage.\n"
    ),
}
ON_TOPIC = "How often should I rotate an API key?"
OFF_TOPIC = "recipe for banana bread with walnuts"
TEST_GATE = 0.2  # hashing-embedder cosines here: ON_TOPIC ~0.28, OFF_TOPIC ~0.08
PROMPT = "[system]\nAnswer from the sources.\n\n[user]\n[1] API keys\nRotate...\n\nQuestion: ?"


def write_corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in CORPUS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def retriever(tmp_path: Path) -> Iterator[HybridRetriever]:
    store = SqliteDocumentStore(tmp_path / "db" / "ragkeel.db")
    embedder = HashingEmbedder(256)
    pipeline = IngestionPipeline(
        store, embedder, Chunker(embedder.tokenizer, 64, 0.15), max_file_bytes=10**6
    )
    report = pipeline.ingest([str(write_corpus(tmp_path / "docs"))], "kb")
    assert report.exit_code == 0, report.to_dict()
    r = HybridRetriever(store, store.keyword, store.vectors, embedder)
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
        gate=GateRecord(True, "dense", 0.44, 7.5, 0.3, None),
        prompt=PromptRecord.of(PROMPT, tokens=30, keep_text=True),
        output="Rotate every API key every ninety days [1].",
        citations=(
            CitationRecord(1, "c1", "d1", "/docs/keys.md", "API keys", None, "Rotate every..."),
        ),
    )
    return dataclasses.replace(trace, **changes)  # type: ignore[arg-type]

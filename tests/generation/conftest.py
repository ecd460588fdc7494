"""A small real index for the answer flow: SQLite on ``tmp_path``, the hashing embedder, the
hybrid retriever, and builders for hits and packed contexts without a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.generation.context import PackedContext, pack_context
from ragkeel.ingestion.chunking import Chunker
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.tokens import RegexTokenCounter
from ragkeel.types import Chunk, SearchHit

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
    "pricing.md": (
        "# Pricing\n\nEach query costs tokens. The monthly budget is set per tenant and alerts "
        "fire at eighty percent of it.\n"
    ),
}
ON_TOPIC = "How often should I rotate an API key?"
OFF_TOPIC = "recipe for banana bread with walnuts"
# Hashing-embedder cosines on this corpus: ON_TOPIC ~0.28, OFF_TOPIC ~0.08.
TEST_GATE = 0.2


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    s = SqliteDocumentStore(tmp_path / "db" / "ragkeel.db")
    yield s
    s.close()


@pytest.fixture
def retriever(tmp_path: Path, store: SqliteDocumentStore) -> Iterator[HybridRetriever]:
    embedder = HashingEmbedder(256)
    root = tmp_path / "docs"
    root.mkdir()
    for name, text in CORPUS.items():
        (root / name).write_text(text, encoding="utf-8")
    pipeline = IngestionPipeline(
        store, embedder, Chunker(embedder.tokenizer, 64, 0.15), max_file_bytes=10**6
    )
    report = pipeline.ingest([str(root)], "kb")
    assert report.exit_code == 0, report.to_dict()
    r = HybridRetriever(store, store.keyword, store.vectors, embedder)
    yield r
    r.close()


def count(text: str) -> int:
    return RegexTokenCounter().count(text)


def hit(
    chunk_id: str,
    text: str,
    *,
    document_id: str = "doc",
    title: str = "",
    page: int | None = None,
    dense: float | None = 0.5,
) -> SearchHit:
    chunk = Chunk(
        id=chunk_id,
        document_id=document_id,
        collection="kb",
        ordinal=0,
        text=text,
        start=0,
        end=len(text),
        title=title,
        source=f"/docs/{document_id}.md",
        page=page,
    )
    return SearchHit(chunk=chunk, score=1.0, dense_rank=1, dense_score=dense)


def context_of(*texts: str) -> PackedContext:
    hits = [hit(f"c{i}", t, document_id=f"d{i}") for i, t in enumerate(texts, 1)]
    packed = pack_context(hits, count, 10_000)
    assert len(packed.sources) == len(texts)
    return packed

"""A small real index for the answer flow: SQLite on ``tmp_path``, the hashing embedder, the
hybrid retriever, and builders for hits and packed contexts without a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from corpus import OFF_TOPIC as OFF_TOPIC
from corpus import ON_TOPIC as ON_TOPIC
from corpus import TEST_GATE as TEST_GATE
from corpus import index_corpus
from ragkeel.generation.context import PackedContext, pack_context
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.tokens import RegexTokenCounter
from ragkeel.types import Chunk, SearchHit


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    s = SqliteDocumentStore(tmp_path / "db" / "ragkeel.db")
    yield s
    s.close()


@pytest.fixture
def retriever(tmp_path: Path, store: SqliteDocumentStore) -> Iterator[HybridRetriever]:
    r = index_corpus(store, tmp_path / "docs")
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

"""Fixtures for trace tests: a tiny real index (SQLite on ``tmp_path``, the hashing embedder,
the hybrid retriever) and a fully populated ``Trace`` (``full_trace``, shipped with the
trace-store contract in ``ragkeel.testing.contracts.trace_store``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import corpus
from corpus import KEYS_AND_OUTAGE
from corpus import OFF_TOPIC as OFF_TOPIC
from corpus import ON_TOPIC as ON_TOPIC
from corpus import TEST_GATE as TEST_GATE
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.testing.contracts.trace_store import PROMPT as PROMPT
from ragkeel.testing.contracts.trace_store import full_trace as full_trace


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

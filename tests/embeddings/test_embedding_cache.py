"""SqliteEmbeddingCache and CachingEmbedder on a real SQLite file in tmp_path."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from ragkeel.embeddings.base import Matrix, Vector
from ragkeel.embeddings.cache import CachingEmbedder, SqliteEmbeddingCache, text_hash
from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.errors import EmbeddingError
from ragkeel.tokens import RegexTokenCounter


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[SqliteEmbeddingCache]:
    store = SqliteEmbeddingCache(tmp_path / "embeddings.db")
    yield store
    store.close()


def test_misses_are_embedded_in_one_call_then_served_from_cache(
    cache: SqliteEmbeddingCache,
) -> None:
    inner = HashingEmbedder(16)
    embedder = CachingEmbedder(inner, cache)
    texts = ["alpha", "beta", "gamma"]
    first = embedder.embed_documents(texts)
    np.testing.assert_array_equal(first, HashingEmbedder(16).embed_documents(texts))
    assert (inner.calls, inner.texts_embedded) == (1, 3)
    assert (embedder.hits, embedder.misses) == (0, 3)

    second = embedder.embed_documents(texts)
    np.testing.assert_array_equal(second, first)
    assert inner.calls == 1  # all hits: no inner call
    assert (embedder.hits, embedder.misses) == (3, 3)

    mixed = embedder.embed_documents(["beta", "delta", "alpha", "epsilon"])
    assert (inner.calls, inner.texts_embedded) == (2, 5)  # only the two misses, in one call
    np.testing.assert_array_equal(mixed[0], first[1])
    np.testing.assert_array_equal(mixed[2], first[0])
    assert (embedder.hits, embedder.misses) == (5, 5)


def test_query_goes_through_the_cache(cache: SqliteEmbeddingCache) -> None:
    inner = HashingEmbedder(16)
    embedder = CachingEmbedder(inner, cache)
    a = embedder.embed_query("where is the key")
    b = embedder.embed_query("where is the key")
    np.testing.assert_array_equal(a, b)
    assert a.shape == (16,)
    assert inner.calls == 1
    assert (embedder.hits, embedder.misses) == (1, 1)


def test_duplicates_within_a_call_are_embedded_once(cache: SqliteEmbeddingCache) -> None:
    inner = HashingEmbedder(16)
    embedder = CachingEmbedder(inner, cache)
    out = embedder.embed_documents(["same", "other", "same"])
    np.testing.assert_array_equal(out[0], out[2])
    assert inner.texts_embedded == 2
    assert embedder.misses == 3
    assert embedder.embed_documents([]).shape == (0, 16)


def test_large_batches_chunk_the_lookup(cache: SqliteEmbeddingCache) -> None:
    inner = HashingEmbedder(8)
    embedder = CachingEmbedder(inner, cache)
    texts = [f"text number {i}" for i in range(1234)]
    first = embedder.embed_documents(texts)
    second = embedder.embed_documents(texts)
    np.testing.assert_array_equal(first, second)
    assert inner.calls == 1
    assert embedder.hits == 1234
    assert cache.count("hashing-8") == 1234


def test_models_do_not_share_entries(cache: SqliteEmbeddingCache) -> None:
    small = CachingEmbedder(HashingEmbedder(8), cache)
    large = CachingEmbedder(HashingEmbedder(16), cache)
    assert small.embed_query("text").shape == (8,)
    assert large.embed_query("text").shape == (16,)
    assert large.misses == 1
    assert cache.count() == 2


@pytest.mark.parametrize("blob", [b"\x00" * 5, np.full(16, np.nan, dtype="<f4").tobytes()])
def test_corrupt_row_is_a_miss_and_is_overwritten(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "embeddings.db"
    SqliteEmbeddingCache(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT INTO embeddings VALUES (?, ?, ?)", ("hashing-16", text_hash("text"), blob)
        )
    raw.close()
    cache = SqliteEmbeddingCache(path)
    inner = HashingEmbedder(16)
    embedder = CachingEmbedder(inner, cache)
    np.testing.assert_array_equal(embedder.embed_query("text"), inner.embed_query("text"))
    assert embedder.misses == 1
    stored = cache.get_many("hashing-16", [text_hash("text")], 16)
    np.testing.assert_array_equal(stored[text_hash("text")], inner.embed_query("text"))
    cache.close()


def test_persists_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "embeddings.db"
    cache = SqliteEmbeddingCache(path)
    CachingEmbedder(HashingEmbedder(8), cache).embed_documents(["kept"])
    cache.close()
    reopened = SqliteEmbeddingCache(path)
    embedder = CachingEmbedder(HashingEmbedder(8), reopened)
    embedder.embed_documents(["kept"])
    assert embedder.hits == 1
    reopened.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_usable_from_another_thread(cache: SqliteEmbeddingCache) -> None:
    embedder = CachingEmbedder(HashingEmbedder(8), cache)
    embedder.embed_query("from main")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            embedder.embed_documents(["from main", "from worker"])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=5)
    assert errors == []
    assert (embedder.hits, embedder.misses) == (1, 2)


class _WrongShape:
    """An embedder that breaks its contract (returns one row too few)."""

    name, dimension, tokenizer = "broken", 4, RegexTokenCounter()

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        return np.zeros((max(len(texts) - 1, 0), 4), dtype=np.float32)

    def embed_query(self, text: str) -> Vector:
        return np.zeros(4, dtype=np.float32)


def test_inner_contract_violation_is_an_error(cache: SqliteEmbeddingCache) -> None:
    with pytest.raises(EmbeddingError, match="shape"):
        CachingEmbedder(_WrongShape(), cache).embed_documents(["a", "b"])
    assert cache.count() == 0

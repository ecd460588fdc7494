"""The shared contract every ``Embedder`` must pass (ARCHITECTURE.md section 4.3)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from ragkeel.embeddings import CachingEmbedder, Embedder, HashingEmbedder, SqliteEmbeddingCache
from ragkeel.embeddings.remote import RemoteEmbedder

from .conftest import FakeEmbeddingServer

TEXTS = [
    "How do I rotate an API key?",
    "",
    "The weather in Paris is mild",
    "Naïve café, 日本語 text!",
    "How do I rotate an API key?",
]


@pytest.fixture(
    params=["hashing", "caching", "remote", pytest.param("onnx", marks=pytest.mark.model)]
)
def embedder(
    request: pytest.FixtureRequest, tmp_path: Path, fake_server: FakeEmbeddingServer
) -> Iterator[Embedder]:
    closers: list[Callable[[], None]] = []
    built: Embedder
    if request.param == "hashing":
        built = HashingEmbedder(48)
    elif request.param == "caching":
        cache = SqliteEmbeddingCache(tmp_path / "cache.db")
        closers.append(cache.close)
        built = CachingEmbedder(HashingEmbedder(48), cache)
    elif request.param == "remote":
        remote = RemoteEmbedder(fake_server.base_url, "fake", dimension=None, max_retries=0)
        closers.append(remote.close)
        built = remote
    else:
        built = request.getfixturevalue("onnx_embedder")
    yield built
    for close in closers:
        close()


def test_documents_shape_dtype_and_norms(embedder: Embedder) -> None:
    vectors = embedder.embed_documents(TEXTS)
    assert vectors.shape == (len(TEXTS), embedder.dimension)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_order_and_determinism(embedder: Embedder) -> None:
    forward = embedder.embed_documents(TEXTS)
    backward = embedder.embed_documents(TEXTS[::-1])
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-5)
    np.testing.assert_allclose(forward[0], forward[4], atol=1e-6)


def test_query_matches_document_row(embedder: Embedder) -> None:
    query = embedder.embed_query(TEXTS[0])
    assert query.shape == (embedder.dimension,)
    assert query.dtype == np.float32
    np.testing.assert_allclose(query, embedder.embed_documents(TEXTS[:1])[0], atol=1e-5)


def test_empty_batch(embedder: Embedder) -> None:
    assert embedder.embed_documents([]).shape == (0, embedder.dimension)


def test_identity(embedder: Embedder) -> None:
    assert isinstance(embedder.name, str) and embedder.name
    assert embedder.dimension > 0


def test_tokenizer_counts_match_offsets(embedder: Embedder) -> None:
    for text in TEXTS:
        offsets = embedder.tokenizer.offsets(text)
        assert embedder.tokenizer.count(text) == len(offsets)
        assert all(0 <= a < b <= len(text) for a, b in offsets)
        assert offsets == sorted(offsets)

"""The embedder contract (``ragkeel.testing.contracts.embedder``) over every backend: hashing,
the caching wrapper, remote (against the loopback fake ``/v1/embeddings``) and ONNX (the
installed model: skipped with a reason when it is not installed, outside CI).

Add a backend by adding one ``Test...`` class with an ``embedder`` fixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeel.embeddings import CachingEmbedder, Embedder, HashingEmbedder, SqliteEmbeddingCache
from ragkeel.embeddings.remote import RemoteEmbedder
from ragkeel.errors import ModelChecksumError, ModelError
from ragkeel.testing.contracts.embedder import EmbedderContract

from .conftest import FakeEmbeddingServer


class TestHashingEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self) -> Embedder:
        return HashingEmbedder(48)


class TestCachingEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self, tmp_path: Path) -> Iterator[Embedder]:
        cache = SqliteEmbeddingCache(tmp_path / "cache.db")
        yield CachingEmbedder(HashingEmbedder(48), cache)
        cache.close()


class TestRemoteEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self, fake_server: FakeEmbeddingServer) -> Iterator[Embedder]:
        remote = RemoteEmbedder(fake_server.base_url, "fake", dimension=None, max_retries=0)
        yield remote
        remote.close()


@pytest.mark.model
class TestOnnxEmbedder(EmbedderContract):
    @pytest.fixture
    def embedder(self, request: pytest.FixtureRequest) -> Embedder:
        try:
            onnx: Embedder = request.getfixturevalue("onnx_embedder")
        except ModelError as exc:
            if os.environ.get("CI") or isinstance(exc, ModelChecksumError):
                raise  # CI installs it; a file that fails its checksum is a real failure
            pytest.skip(f"ONNX embedder model not installed (`make setup`): {exc}")
        return onnx

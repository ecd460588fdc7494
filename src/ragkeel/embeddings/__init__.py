"""Embedders: text in, L2-normalised float32 vectors out (see ``base.Embedder``).

``build_embedder(settings)`` picks the backend named by ``settings.embedding.provider`` and, when
``settings.embedding.cache`` is on, wraps it in a ``CachingEmbedder``. Importing this package is
cheap: ``OnnxEmbedder`` (onnxruntime, tokenizers) and ``RemoteEmbedder`` (httpx) are loaded on
first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ragkeel.embeddings.base import Embedder, Matrix, Vector, l2_normalise
from ragkeel.embeddings.cache import CachingEmbedder, SqliteEmbeddingCache
from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.errors import ConfigError, StorageError
from ragkeel.settings import Settings

if TYPE_CHECKING:
    from ragkeel.embeddings.onnx import OnnxEmbedder
    from ragkeel.embeddings.remote import RemoteEmbedder

__all__ = [
    "CachingEmbedder",
    "Embedder",
    "HashingEmbedder",
    "Matrix",
    "OnnxEmbedder",
    "RemoteEmbedder",
    "SqliteEmbeddingCache",
    "Vector",
    "build_embedder",
    "l2_normalise",
]

_LAZY = {"OnnxEmbedder": "ragkeel.embeddings.onnx", "RemoteEmbedder": "ragkeel.embeddings.remote"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_embedder(settings: Settings) -> Embedder:
    """The configured embedder, cached at ``<home>/cache/embeddings.db`` if enabled."""
    config = settings.embedding
    embedder: Embedder
    if config.provider == "onnx":
        from ragkeel.embeddings.onnx import OnnxEmbedder

        embedder = OnnxEmbedder.from_installed_packages(
            settings.models_dir, config.threads, config.batch_size, config.max_length
        )
    elif config.provider == "hashing":
        embedder = HashingEmbedder(config.hashing_dimension)
    elif config.provider == "remote":
        from ragkeel.embeddings.remote import RemoteEmbedder

        embedder = RemoteEmbedder.from_settings(config.remote, batch_size=config.batch_size)
    else:  # unreachable while Settings validates the Literal
        raise ConfigError(f"embedding.provider: unknown provider {config.provider!r}")
    if not config.cache:
        return embedder
    cache_dir = settings.home / "cache"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create {cache_dir}: {exc}",
            hint="check that RAGKEEL_HOME is writable, or set embedding.cache to false",
        ) from exc
    return CachingEmbedder(embedder, SqliteEmbeddingCache(cache_dir / "embeddings.db"))

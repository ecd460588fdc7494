"""Embedders: text in, L2-normalised float32 vectors out (see ``base.Embedder``).

``build_embedder(config, models_dir=..., cache_dir=...)`` picks the backend named by
``config.provider`` (the ``embedding`` section of the settings, passed by the container with the
two directories it resolves) and, when ``config.cache`` is on, wraps it in a ``CachingEmbedder``
kept in ``cache_dir``. It never sees the whole ``Settings``. Importing this package is
cheap: ``OnnxEmbedder`` (onnxruntime, tokenizers) and ``RemoteEmbedder`` (httpx) are loaded on
first use.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragkeel.embeddings.base import Embedder, Matrix, Vector, l2_normalise
from ragkeel.embeddings.cache import CachingEmbedder, SqliteEmbeddingCache
from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.errors import ConfigError, StorageError
from ragkeel.models.onnx_export import read_export
from ragkeel.settings import EmbeddingSettings

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

ONNX_STAMPS = "verified-onnx.json"  # in the models directory: hashes of your own exports
_LAZY = {"OnnxEmbedder": "ragkeel.embeddings.onnx", "RemoteEmbedder": "ragkeel.embeddings.remote"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_embedder(config: EmbeddingSettings, *, models_dir: Path, cache_dir: Path) -> Embedder:
    """The configured embedder (the ONNX model's files under ``models_dir``, or your own
    export in ``embedding.onnx.model_dir``), cached at ``<cache_dir>/embeddings.db`` if
    ``config.cache`` is on."""
    embedder: Embedder
    if config.provider == "onnx":
        embedder = _onnx_embedder(config, models_dir)
    elif config.provider == "hashing":
        embedder = HashingEmbedder(config.hashing_dimension)
    elif config.provider == "remote":
        from ragkeel.embeddings.remote import RemoteEmbedder

        embedder = RemoteEmbedder.from_settings(config.remote, batch_size=config.batch_size)
    else:  # unreachable while EmbeddingSettings validates the Literal
        raise ConfigError(f"embedding.provider: unknown provider {config.provider!r}")
    if not config.cache:
        return embedder
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create {cache_dir}: {exc}",
            hint="check that RAGKEEL_HOME is writable, or set embedding.cache to false",
        ) from exc
    return CachingEmbedder(embedder, SqliteEmbeddingCache(cache_dir / "embeddings.db"))


def _onnx_embedder(config: EmbeddingSettings, models_dir: Path) -> OnnxEmbedder:
    """The pinned MiniLM, or your own export (``embedding.onnx.model_dir``, issue 15), read to
    at most ``embedding.onnx.max_length`` tokens, else the export's ``max_seq_length``, else
    ``embedding.max_length``; its hash is remembered in the models directory."""
    from ragkeel.embeddings.onnx import OnnxEmbedder

    own = config.onnx
    if own.model_dir is None:
        return OnnxEmbedder.from_installed_packages(
            models_dir, config.threads, config.batch_size, config.max_length
        )
    export = read_export(
        own.model_dir, sha256=own.sha256, pooling=own.pooling, stamps=models_dir / ONNX_STAMPS
    )
    length = own.max_length or export.max_length or config.max_length
    return OnnxEmbedder.from_export(export, config.threads, config.batch_size, length)

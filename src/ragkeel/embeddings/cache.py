"""An embedding cache: vectors by (model name, sha256 of the text), in their own SQLite file.

``CachingEmbedder`` wraps any ``Embedder`` and implements the same protocol: one lookup per call
(the ``IN`` list chunked to ``_MAX_PARAMS``), one inner call for all misses (none when all hit),
then the misses are stored. A stored row whose byte length does not match the dimension, or
that holds non-finite values, is treated as a miss and overwritten.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragkeel.embeddings.base import Embedder, Matrix, Vector
from ragkeel.errors import EmbeddingError, StorageError
from ragkeel.tokens import TokenCounter

_MAX_PARAMS = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    text_hash BLOB NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, text_hash)
) WITHOUT ROWID
"""


def text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class SqliteEmbeddingCache:
    """float32 vectors in a WAL-mode SQLite file. One connection guarded by a lock, so an
    instance may be shared by threads (calls are serialised)."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(
                f"cannot open embedding cache {self.path}: {exc}",
                hint="check the path is writable, or set embedding.cache to false",
            ) from exc

    def get_many(self, model: str, keys: Sequence[bytes], dimension: int) -> dict[bytes, Vector]:
        """The valid stored vectors among ``keys`` (missing and corrupt rows are left out)."""
        found: dict[bytes, Vector] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), _MAX_PARAMS):
                chunk = unique[start : start + _MAX_PARAMS]
                marks = ",".join("?" * len(chunk))
                rows = self._query(
                    "SELECT text_hash, vector FROM embeddings"
                    f" WHERE model = ? AND text_hash IN ({marks})",
                    [model, *chunk],
                )
                for key, blob in rows:
                    vector = _decode(blob, dimension)
                    if vector is not None:
                        found[bytes(key)] = vector
        return found

    def put_many(self, model: str, items: Sequence[tuple[bytes, Vector]]) -> None:
        """Insert or overwrite vectors, in one transaction."""
        rows = [(model, key, np.asarray(v, dtype="<f4").tobytes()) for key, v in items]
        if not rows:
            return
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise StorageError(f"cannot write embedding cache {self.path}: {exc}") from exc

    def count(self, model: str | None = None) -> int:
        sql, params = "SELECT COUNT(*) FROM embeddings", []
        if model is not None:
            sql, params = sql + " WHERE model = ?", [model]
        with self._lock:
            return int(self._query(sql, params)[0][0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _query(self, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read embedding cache {self.path}: {exc}") from exc


def _decode(blob: object, dimension: int) -> Vector | None:
    if not isinstance(blob, bytes) or len(blob) != 4 * dimension:
        return None
    vector = np.frombuffer(blob, dtype="<f4").astype(np.float32)
    return vector if bool(np.isfinite(vector).all()) else None


class CachingEmbedder:
    """``Embedder`` wrapper that serves repeated texts from a ``SqliteEmbeddingCache``.

    ``hits`` and ``misses`` count input texts (so ``hits + misses`` is every text asked for);
    a text repeated within one call is embedded only once.
    """

    def __init__(self, inner: Embedder, cache: SqliteEmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def tokenizer(self) -> TokenCounter:
        return self.inner.tokenizer

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        dimension = self.inner.dimension
        keys = [text_hash(t) for t in texts]
        found = self.cache.get_many(self.name, keys, dimension) if texts else {}
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}
        if missing:
            fresh = self.inner.embed_documents(list(missing.values()))
            if fresh.shape != (len(missing), dimension):
                raise EmbeddingError(
                    f"{self.name} returned shape {fresh.shape} for {len(missing)} texts"
                )
            new = dict(zip(missing, fresh, strict=True))
            self.cache.put_many(self.name, list(new.items()))
            found.update(new)
        hit_count = sum(1 for k in keys if k not in missing)
        self.hits += hit_count
        self.misses += len(keys) - hit_count
        out = np.zeros((len(texts), dimension), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = found[key]
        return out

    def embed_query(self, text: str) -> Vector:
        row: Vector = self.embed_documents([text])[0]
        return row

"""SQLite (WAL) backend: documents, chunks, BM25 postings and vectors in one database file.

One write transaction per document (``BEGIN IMMEDIATE`` … ``COMMIT``) replaces the document row,
its chunk rows, their postings and their vectors together, logs the deleted chunk rowids and
bumps the collection's generation; a ``kill -9`` at any moment leaves either the old or the new
version, never a mix. Searches run on per-collection in-memory ``Segment`` copies, refreshed
incrementally and cached on disk next to the database (``segment_source.py``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ragkeel.errors import StorageError
from ragkeel.storage import deletion_log
from ragkeel.storage.analyzer import term_frequencies
from ragkeel.storage.base import StoredDocumentInfo, StoreStats
from ragkeel.storage.filters import Filter, to_sql
from ragkeel.storage.schema import migrate, new_uid
from ragkeel.storage.segment import Segment
from ragkeel.storage.segment_cache import SegmentCache
from ragkeel.storage.segment_source import CompactionPolicy, SqliteSegmentSource
from ragkeel.storage.sqlite_search import SqliteKeywordIndex, SqliteVectorIndex
from ragkeel.types import Chunk, Document

F32 = npt.NDArray[np.float32]

__all__ = ["SqliteDocumentStore", "SqliteKeywordIndex", "SqliteVectorIndex"]


class SqliteDocumentStore:
    """The default ``DocumentStore``; ``.keyword`` and ``.vectors`` are its two search indexes."""

    def __init__(
        self,
        path: Path | str,
        *,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        busy_timeout_ms: int = 10_000,
        segment_cache: bool = True,
        compaction: CompactionPolicy | None = None,
    ) -> None:
        """``segment_cache`` keeps compacted search segments under ``<dir>/segments/`` so that
        a new process does not rebuild them from the tables (``segment_cache.py``)."""
        self.path = Path(path)
        in_memory = str(path) == ":memory:"
        if not in_memory:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(
                str(path),
                isolation_level=None,
                check_same_thread=False,
                timeout=busy_timeout_ms / 1000,
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            migrate(self._conn)
        except sqlite3.DatabaseError as exc:
            raise StorageError(
                f"cannot open the SQLite store at {path}: {exc}",
                hint="check the path and that the file is a ragkeel database",
            ) from exc
        self._lock = threading.RLock()
        self._masks: OrderedDict[tuple[object, ...], npt.NDArray[np.bool_]] = OrderedDict()
        cache = (
            SegmentCache(self.path.parent / "segments", self.path.name)
            if segment_cache and not in_memory
            else None
        )
        self.segments = SqliteSegmentSource(
            self._conn, self._lock, k1=bm25_k1, b=bm25_b, cache=cache, policy=compaction
        )
        self._vocab: dict[str, int] = {}
        self.keyword = SqliteKeywordIndex(self)
        self.vectors = SqliteVectorIndex(self)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- writes ---------------------------------------------------------------------------------
    def upsert_document(
        self,
        document: Document,
        chunks: Sequence[Chunk],
        vectors: F32,
        *,
        embedding_model: str | None = None,
    ) -> None:
        if len(chunks) != len(vectors):
            raise StorageError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
        postings = [term_frequencies(c.index_text()) for c in chunks]
        with self._write() as db:
            self._ensure_collection(db, document.collection, embedding_model, dim)
            self._delete(db, document.collection, [document.id])
            db.execute(
                "INSERT INTO documents(collection, id, source, title, text, content_hash, "
                "metadata, chunk_count, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    document.collection,
                    document.id,
                    document.source,
                    document.title,
                    document.text,
                    document.content_hash,
                    json.dumps(dict(document.metadata)),
                    len(chunks),
                    time.time(),
                ),
            )
            for chunk, tf, vec in zip(chunks, postings, vectors, strict=True):
                cur = db.execute(
                    "INSERT INTO chunks(id, collection, document_id, ordinal, text, start, end_, "
                    "title, source, heading_path, page, token_count, metadata) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        chunk.id,
                        chunk.collection,
                        chunk.document_id,
                        chunk.ordinal,
                        chunk.text,
                        chunk.start,
                        chunk.end,
                        chunk.title,
                        chunk.source,
                        json.dumps(list(chunk.heading_path)),
                        chunk.page,
                        chunk.token_count,
                        json.dumps(dict(chunk.metadata)),
                    ),
                )
                rowid = cur.lastrowid
                ids = self._term_ids(db, list(tf))
                db.execute(
                    "INSERT INTO chunk_terms(chunk_rowid, terms, tfs, length) VALUES (?,?,?,?)",
                    (
                        rowid,
                        np.asarray(ids, np.int32).tobytes(),
                        np.minimum(np.asarray(list(tf.values()), np.int64), 65535)
                        .astype(np.uint16)
                        .tobytes(),
                        int(sum(tf.values())),
                    ),
                )
                db.execute(
                    "INSERT INTO chunk_vectors(chunk_rowid, vector) VALUES (?, ?)",
                    (rowid, np.asarray(vec, np.float32).tobytes()),
                )
            deletion_log.bump(db, document.collection)

    def delete_documents(self, collection: str, document_ids: Iterable[str]) -> int:
        ids = list(document_ids)
        if not ids:
            return 0
        with self._write() as db:
            removed, chunks = self._delete(db, collection, ids)
            if removed or chunks:
                deletion_log.bump(db, collection)
        return removed

    def relocate_document(self, collection: str, document_id: str, source: str) -> bool:
        """Record that an unchanged document now comes from ``source`` (a moved or renamed
        file): its rows and vectors stay, so nothing is re-embedded. Returns whether it existed."""
        with self._write() as db:
            moved = db.execute(
                "UPDATE documents SET source=? WHERE collection=? AND id=?",
                (source, collection, document_id),
            ).rowcount
            if moved:
                db.execute(
                    "UPDATE chunks SET source=? WHERE collection=? AND document_id=?",
                    (source, collection, document_id),
                )
                deletion_log.bump(db, collection)  # source filters must see the new path
        return bool(moved)

    def drop_collection(self, collection: str) -> int:
        with self._write() as db:
            ids = [
                r[0]
                for r in db.execute("SELECT id FROM documents WHERE collection=?", (collection,))
            ]
            removed, _ = self._delete(db, collection, ids, log=False)
            db.execute("DELETE FROM collections WHERE name=?", (collection,))
            deletion_log.forget(db, collection)
        self.segments.forget(collection)
        return removed

    def _delete(
        self, db: sqlite3.Connection, collection: str, ids: Sequence[str], *, log: bool = True
    ) -> tuple[int, int]:
        """Delete documents with their chunks; (documents, chunks) removed."""
        removed = chunks = 0
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            if log:
                deletion_log.record(db, collection, part)
            chunks += db.execute(
                f"DELETE FROM chunks WHERE collection=? AND document_id IN ({marks})",
                (collection, *part),
            ).rowcount
            removed += db.execute(
                f"DELETE FROM documents WHERE collection=? AND id IN ({marks})",
                (collection, *part),
            ).rowcount
        return removed, chunks

    def _ensure_collection(
        self, db: sqlite3.Connection, name: str, model: str | None, dim: int
    ) -> None:
        row = db.execute(
            "SELECT embedding_model, dimension FROM collections WHERE name=?", (name,)
        ).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO collections(name, embedding_model, dimension, generation, uid) "
                "VALUES (?,?,?,0,?)",
                (name, model, dim, new_uid()),
            )
        elif (model is not None and row[0] not in (None, model)) or (
            dim and row[1] not in (0, dim)
        ):
            raise StorageError(
                f"collection {name!r} was indexed with {row[0]} ({row[1]} dims); "
                f"cannot add vectors from {model} ({dim} dims)",
                hint="ingest into another --collection or drop this one first",
            )
        elif row[0] is None and model is not None:
            db.execute(
                "UPDATE collections SET embedding_model=?, dimension=? WHERE name=?",
                (model, dim, name),
            )

    def _term_ids(self, db: sqlite3.Connection, terms: list[str]) -> list[int]:
        missing = [t for t in terms if t not in self._vocab]
        if missing:
            db.executemany("INSERT OR IGNORE INTO vocab(term) VALUES (?)", [(t,) for t in missing])
            for start in range(0, len(missing), 500):
                part = missing[start : start + 500]
                q = f"SELECT term, id FROM vocab WHERE term IN ({','.join('?' * len(part))})"
                self._vocab.update(db.execute(q, part).fetchall())
        return [self._vocab[t] for t in terms]

    # -- reads ----------------------------------------------------------------------------------
    def document_info(self, collection: str, document_id: str) -> StoredDocumentInfo | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT id, source, content_hash, chunk_count FROM documents "
                "WHERE collection=? AND id=?",
                (collection, document_id),
            ).fetchone()
        return StoredDocumentInfo(*row) if row else None

    def documents_by_source(self, collection: str) -> Mapping[str, Sequence[str]]:
        out: dict[str, list[str]] = {}
        with self._lock:
            for source, doc_id in self._conn.execute(
                "SELECT source, id FROM documents WHERE collection=?", (collection,)
            ):
                out.setdefault(source, []).append(doc_id)
        return out

    def get_document(self, collection: str, document_id: str) -> Document | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT id, collection, source, title, text, content_hash, metadata "
                "FROM documents WHERE collection=? AND id=?",
                (collection, document_id),
            ).fetchone()
        if row is None:
            return None
        return Document(
            id=row[0],
            collection=row[1],
            source=row[2],
            title=row[3],
            text=row[4],
            content_hash=row[5],
            metadata=json.loads(row[6]),
        )

    def get_chunks(self, chunk_ids: Sequence[str]) -> Mapping[str, Chunk]:
        out: dict[str, Chunk] = {}
        ids = list(dict.fromkeys(chunk_ids))
        with self._lock:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                for row in self._conn.execute(
                    "SELECT id, document_id, collection, ordinal, text, start, end_, title, source,"
                    " heading_path, page, token_count, metadata FROM chunks WHERE id IN "
                    f"({','.join('?' * len(part))})",
                    part,
                ):
                    out[row[0]] = Chunk(
                        id=row[0],
                        document_id=row[1],
                        collection=row[2],
                        ordinal=row[3],
                        text=row[4],
                        start=row[5],
                        end=row[6],
                        title=row[7],
                        source=row[8],
                        heading_path=tuple(json.loads(row[9])),
                        page=row[10],
                        token_count=row[11],
                        metadata=json.loads(row[12]),
                    )
        return out

    def collections(self) -> dict[str, dict[str, object]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT c.name, c.embedding_model, c.dimension, "
                "(SELECT count(*) FROM documents d WHERE d.collection=c.name), "
                "(SELECT count(*) FROM chunks k WHERE k.collection=c.name) FROM collections c "
                "ORDER BY c.name"
            ).fetchall()
        return {
            r[0]: {"embedding_model": r[1], "dimension": r[2], "documents": r[3], "chunks": r[4]}
            for r in rows
        }

    def stats(self) -> StoreStats:
        cols = self.collections()
        models = {str(c["embedding_model"]) for c in cols.values() if c["embedding_model"]}
        return StoreStats(
            documents=sum(int(str(c["documents"])) for c in cols.values()),
            chunks=sum(int(str(c["chunks"])) for c in cols.values()),
            collections={k: int(str(v["chunks"])) for k, v in cols.items()},
            embedding_model=", ".join(sorted(models)) or None,
        )

    def check_integrity(self) -> list[str]:
        """Problems found (empty when consistent): orphans across the four tables."""
        checks = {
            "chunks without document": "SELECT count(*) FROM chunks c LEFT JOIN documents d "
            "ON d.collection=c.collection AND d.id=c.document_id WHERE d.id IS NULL",
            "chunks without postings": "SELECT count(*) FROM chunks c LEFT JOIN chunk_terms t "
            "ON t.chunk_rowid=c.rowid WHERE t.chunk_rowid IS NULL",
            "chunks without vector": "SELECT count(*) FROM chunks c LEFT JOIN chunk_vectors v "
            "ON v.chunk_rowid=c.rowid WHERE v.chunk_rowid IS NULL",
            "documents with wrong chunk count": "SELECT count(*) FROM documents d WHERE "
            "d.chunk_count != (SELECT count(*) FROM chunks c WHERE c.collection=d.collection "
            "AND c.document_id=d.id)",
        }
        with self._lock:
            found = {k: self._conn.execute(q).fetchone()[0] for k, q in checks.items()}
            ok = self._conn.execute("PRAGMA integrity_check").fetchone()[0]
        problems = [f"{n} {k}" for k, n in found.items() if n]
        return problems if ok == "ok" else [*problems, f"sqlite integrity_check: {ok}"]

    # -- search support -------------------------------------------------------------------------
    def collection_model(self, collection: str) -> tuple[str | None, int] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT embedding_model, dimension FROM collections WHERE name=?", (collection,)
            ).fetchone()
        return (row[0], int(row[1])) if row else None

    def segment(self, collection: str) -> Segment:
        """The collection's search segment at its current generation."""
        return self.segments.get(collection)

    def known_term_ids(self, terms: Sequence[str]) -> list[int]:
        """Vocabulary ids of ``terms`` (in order, repeats kept), skipping terms never indexed."""
        with self._lock:
            unknown = [t for t in dict.fromkeys(terms) if t not in self._vocab]
            if unknown:
                q = f"SELECT term, id FROM vocab WHERE term IN ({','.join('?' * len(unknown))})"
                self._vocab.update(self._conn.execute(q, unknown).fetchall())
            return [self._vocab[t] for t in terms if t in self._vocab]

    def filter_mask(self, collection: str, seg: Segment, flt: Filter) -> npt.NDArray[np.bool_]:
        """The rows of ``seg`` that pass ``flt``, resolved by SQL once per segment version and
        filter, then reused: a tenant or ACL filter repeats on every query, and the SQL costs
        ~100 ms at 100k chunks while the mask is free to reuse (segments are immutable)."""
        key = (collection, seg.uid, seg.generation, _filter_key(flt))
        with self._lock:
            cached = self._masks.get(key)
            if cached is not None:
                self._masks.move_to_end(key)
                return cached
        mask = seg.mask_for(self.allowed_rowids(flt))
        with self._lock:
            self._masks[key] = mask
            while len(self._masks) > _MASK_CACHE_SIZE:
                self._masks.popitem(last=False)
        return mask

    def allowed_rowids(self, flt: Filter) -> npt.NDArray[np.int64]:
        where, params = to_sql(flt, "c")
        with self._lock:
            rows = self._conn.execute(f"SELECT c.rowid FROM chunks c WHERE {where}", params)
            return np.fromiter((r[0] for r in rows), np.int64)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_MASK_CACHE_SIZE = 64


def _filter_key(flt: Filter) -> tuple[object, ...]:
    meta = tuple(
        sorted((k, tuple(v) if isinstance(v, list | tuple) else v) for k, v in flt.metadata.items())
    )
    return (flt.sources, flt.document_ids, meta)

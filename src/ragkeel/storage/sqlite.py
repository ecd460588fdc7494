"""SQLite (WAL) backend: documents, chunks, BM25 postings and vectors in one database file.

One write transaction per document (``BEGIN IMMEDIATE`` … ``COMMIT``) replaces the document row,
its chunk rows, their postings and their vectors together, logs the deleted chunk rowids and
bumps the collection's generation; a ``kill -9`` at any moment leaves either the old or the new
version, never a mix. Searches run on per-collection in-memory ``Segment`` copies, refreshed
incrementally and cached on disk next to the database (``segment_source.py``).

Tenants and ACLs (issue 11, ``tenancy.py``): a collection is stored under a key made from its
tenant and name (``schema.py``), so each tenant's collections have their own rows, segments,
BM25 statistics and segment caches, and a search only ever opens the segments of the caller's
tenant. A document's ACL principals live in ``document_principals``; a scope that does not see
every principal searches with a row mask of the chunks whose document is public or names one of
its principals, resolved by SQL once per segment generation and cached with the filter masks
(``sqlite_masks.py``). Every ACL change bumps the collection's generation, so no cached mask
outlives it. Reads by id
(``get_document``, ``get_chunks``, ``document_info``, ``documents_by_source``) and changes
(``delete_documents``, ``relocate_document``, ``set_principals``) apply the same scope in SQL.

Languages (issue 15): a collection records the language of its keyword index
(``collections.language``); its postings are written with that language's analyzer, a write
in another language is refused (``LANGUAGE_MISMATCH``), and ``reindex_keywords`` re-analyses
every chunk of a collection in another language in one transaction (a new ``uid``, so every
segment of the old analysis is rebuilt, not refreshed).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ragkeel.errors import EmbeddingModelMismatchError, StorageError
from ragkeel.languages import DEFAULT_LANGUAGE, check_language, language_mismatch
from ragkeel.storage import deletion_log
from ragkeel.storage import sqlite_versions as versions
from ragkeel.storage.analyzer import analyzer_for
from ragkeel.storage.base import (
    EmbedFn,
    IndexVersion,
    PendingChunk,
    StoredDocument,
    StoredDocumentInfo,
    StoreStats,
)
from ragkeel.storage.filters import Filter, acl_sql
from ragkeel.storage.query_models import searchable
from ragkeel.storage.schema import migrate, new_uid
from ragkeel.storage.segment import Segment
from ragkeel.storage.segment_cache import SegmentCache
from ragkeel.storage.segment_source import CompactionPolicy, SqliteSegmentSource
from ragkeel.storage.sqlite_masks import SqliteRowMasks
from ragkeel.storage.sqlite_rows import CHUNK_COLUMNS, chunk_of, keyword_texts, read_page
from ragkeel.storage.sqlite_search import SqliteKeywordIndex, SqliteVectorIndex
from ragkeel.storage.tenancy import check_name, check_principals, scope_or_default, storage_key
from ragkeel.types import AccessScope, Chunk, Document

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
        cache = (
            SegmentCache(self.path.parent / "segments", self.path.name)
            if segment_cache and not in_memory
            else None
        )
        self.segments = SqliteSegmentSource(
            self._conn, self._lock, k1=bm25_k1, b=bm25_b, cache=cache, policy=compaction
        )
        self._vocab: dict[str, int] = {}
        self._masks = SqliteRowMasks(self._conn, self._lock)
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
        language: str | None = None,
    ) -> None:
        """Written for ``document.tenant`` with ``document.principals`` as its ACL; its chunks
        go into the document's collection, analysed in the collection's language (``language``
        for a new one, default English; another than an existing collection's is refused)."""
        if len(chunks) != len(vectors):
            raise StorageError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        tenant = check_name("tenant", document.tenant)
        check_name("collection", document.collection)
        principals = check_principals(document.principals)
        dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
        lang = check_language(language) if language is not None else None
        scope = AccessScope(tenant, all_principals=True)
        analyzer = analyzer_for(
            lang or self.collection_language(document.collection, scope=scope) or DEFAULT_LANGUAGE
        )
        postings = [analyzer.term_frequencies(c.index_text()) for c in chunks]
        with self._write() as db:
            key = self._ensure_collection(
                db, tenant, document.collection, embedding_model, dim, analyzer.language
            )
            self._delete(db, key, [document.id])
            db.execute(
                "INSERT INTO documents(collection, id, source, title, text, content_hash, "
                "metadata, chunk_count, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    key,
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
            _write_principals(db, key, document.id, principals)
            for chunk, tf, vec in zip(chunks, postings, vectors, strict=True):
                try:
                    cur = db.execute(
                        "INSERT INTO chunks(id, tenant, collection, document_id, ordinal, text, "
                        "start, end_, title, source, heading_path, page, token_count, metadata) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            chunk.id,
                            tenant,
                            key,
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
                except sqlite3.IntegrityError as exc:
                    raise StorageError(
                        f"chunk id {chunk.id!r} is already used by another document: {exc}",
                        hint="chunk ids must be unique within a tenant",
                    ) from exc
                rowid = cur.lastrowid
                db.execute(
                    "INSERT INTO chunk_terms(chunk_rowid, terms, tfs, length) VALUES (?,?,?,?)",
                    (rowid, *_posting_blobs(self._term_ids(db, list(tf)), tf)),
                )
                db.execute(
                    "INSERT INTO chunk_vectors(chunk_rowid, vector) VALUES (?, ?)",
                    (rowid, np.asarray(vec, np.float32).tobytes()),
                )
            deletion_log.bump(db, key)

    def delete_documents(
        self, collection: str, document_ids: Iterable[str], *, scope: AccessScope | None = None
    ) -> int:
        """Removes those of ``document_ids`` that ``scope`` sees; returns how many."""
        ids = list(document_ids)
        if not ids:
            return 0
        with self._write() as db:
            key = self._key(scope, collection)
            if key is None:
                return 0
            visible = self._visible_ids(key, ids, scope_or_default(scope))
            removed, chunks = self._delete(db, key, visible)
            if removed or chunks:
                deletion_log.bump(db, key)
        return removed

    def relocate_document(
        self, collection: str, document_id: str, source: str, *, scope: AccessScope | None = None
    ) -> bool:
        """Record that an unchanged document now comes from ``source`` (a moved or renamed
        file): its rows and vectors stay, so nothing is re-embedded. Returns whether it existed."""
        with self._write() as db:
            key = self._key(scope, collection)
            if key is None or not self._visible_ids(key, [document_id], scope_or_default(scope)):
                return False
            db.execute(
                "UPDATE documents SET source=? WHERE collection=? AND id=?",
                (source, key, document_id),
            )
            db.execute(
                "UPDATE chunks SET source=? WHERE collection=? AND document_id=?",
                (source, key, document_id),
            )
            deletion_log.bump(db, key)  # source filters must see the new path
        return True

    def set_principals(
        self,
        collection: str,
        document_id: str,
        principals: Iterable[str],
        *,
        scope: AccessScope | None = None,
    ) -> bool:
        """Replace the ACL of a document ``scope`` sees (empty: public within the tenant);
        searches from the next call on see the change. Returns whether the document exists."""
        names = check_principals(principals)
        with self._write() as db:
            key = self._key(scope, collection)
            if key is None or not self._visible_ids(key, [document_id], scope_or_default(scope)):
                return False
            db.execute(
                "DELETE FROM document_principals WHERE collection=? AND document_id=?",
                (key, document_id),
            )
            _write_principals(db, key, document_id, names)
            deletion_log.bump(db, key)  # a new generation: no cached ACL mask survives
        return True

    def drop_collection(self, collection: str, *, scope: AccessScope | None = None) -> int:
        """Remove the scope tenant's ``collection`` with everything in it, whatever the ACLs."""
        with self._write() as db:
            key = self._key(scope, collection)
            if key is None:
                return 0
            ids = [r[0] for r in db.execute("SELECT id FROM documents WHERE collection=?", (key,))]
            removed, _ = self._delete(db, key, ids, log=False)
            db.execute("DELETE FROM collections WHERE name=?", (key,))
            deletion_log.forget(db, key)
        self.segments.forget(key)
        return removed

    def _delete(
        self, db: sqlite3.Connection, key: str, ids: Sequence[str], *, log: bool = True
    ) -> tuple[int, int]:
        """Delete documents of the collection stored under ``key`` with their chunks (and, by
        cascade, their postings, vectors and principals); (documents, chunks) removed."""
        removed = chunks = 0
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            if log:
                deletion_log.record(db, key, part)
            chunks += db.execute(
                f"DELETE FROM chunks WHERE collection=? AND document_id IN ({marks})",
                (key, *part),
            ).rowcount
            removed += db.execute(
                f"DELETE FROM documents WHERE collection=? AND id IN ({marks})",
                (key, *part),
            ).rowcount
        return removed, chunks

    def _ensure_collection(
        self,
        db: sqlite3.Connection,
        tenant: str,
        name: str,
        model: str | None,
        dim: int,
        language: str,
    ) -> str:
        """The storage key of the tenant's collection ``name``, created in ``language`` if new;
        ``LANGUAGE_MISMATCH`` when it exists in another one (the postings were analysed in
        ``language``; a concurrent reindex may have changed it since)."""
        row = db.execute(
            "SELECT name, embedding_model, dimension, language FROM collections "
            "WHERE tenant=? AND label=?",
            (tenant, name),
        ).fetchone()
        if row is None:
            key = storage_key(tenant, name)
            db.execute(
                "INSERT INTO collections(name, embedding_model, dimension, generation, uid, "
                "tenant, label, language) VALUES (?,?,?,0,?,?,?,?)",
                (key, model, dim, new_uid(), tenant, name, language),
            )
            return key
        key = str(row[0])
        if row[3] != language:
            raise language_mismatch(name, row[3], language)
        if (model is not None and row[1] not in (None, model)) or (dim and row[2] not in (0, dim)):
            raise EmbeddingModelMismatchError(
                f"collection {name!r} was indexed with {row[1]} ({row[2]} dims); "
                f"cannot add vectors from {model} ({dim} dims)",
                hint="ingest into another --collection, drop this one first, or move it to the "
                "new model with `ragkeel collections reembed`",
            )
        if row[1] is None and model is not None:
            db.execute(
                "UPDATE collections SET embedding_model=?, dimension=? WHERE name=?",
                (model, dim, key),
            )
        return key

    def _key(self, scope: AccessScope | None, collection: str) -> str | None:
        """The storage key of the scope tenant's ``collection``; None when it has none."""
        return self._collection_column(scope, collection, "name")

    def _collection_column(
        self, scope: AccessScope | None, collection: str, column: str
    ) -> str | None:
        """One text column (a name from this module) of the scope tenant's ``collection``."""
        tenant = scope_or_default(scope).tenant
        with self._lock:
            row = self._conn.execute(
                f"SELECT {column} FROM collections WHERE tenant=? AND label=?",
                (tenant, collection),
            ).fetchone()
        return str(row[0]) if row else None

    def _visible_ids(self, key: str, ids: Sequence[str], scope: AccessScope) -> list[str]:
        """Those of ``ids`` that exist in the collection under ``key`` and ``scope`` sees."""
        acl, acl_params = acl_sql(scope, "d", "id")
        out: list[str] = []
        with self._lock:
            for start in range(0, len(ids), 500):
                part = list(ids[start : start + 500])
                out.extend(
                    r[0]
                    for r in self._conn.execute(
                        f"SELECT d.id FROM documents d WHERE d.collection=? AND d.id IN "
                        f"({','.join('?' * len(part))}) AND {acl}",
                        (key, *part, *acl_params),
                    )
                )
        return out

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
    def document_info(
        self, collection: str, document_id: str, *, scope: AccessScope | None = None
    ) -> StoredDocumentInfo | None:
        key = self._key(scope, collection)
        if key is None or not self._visible_ids(key, [document_id], scope_or_default(scope)):
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT id, source, content_hash, chunk_count FROM documents "
                "WHERE collection=? AND id=?",
                (key, document_id),
            ).fetchone()
        if row is None:
            return None
        return StoredDocumentInfo(
            row[0], row[1], row[2], row[3], principals=self._principals(key, document_id)
        )

    def documents_by_source(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> Mapping[str, Sequence[str]]:
        out: dict[str, list[str]] = {}
        key = self._key(scope, collection)
        if key is None:
            return out
        acl, params = acl_sql(scope_or_default(scope), "d", "id")
        with self._lock:
            for source, doc_id in self._conn.execute(
                f"SELECT d.source, d.id FROM documents d WHERE d.collection=? AND {acl}",
                (key, *params),
            ):
                out.setdefault(source, []).append(doc_id)
        return out

    def get_document(
        self, collection: str, document_id: str, *, scope: AccessScope | None = None
    ) -> Document | None:
        key = self._key(scope, collection)
        if key is None or not self._visible_ids(key, [document_id], scope_or_default(scope)):
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT d.id, k.label, d.source, d.title, d.text, d.content_hash, d.metadata, "
                "k.tenant FROM documents d JOIN collections k ON k.name = d.collection "
                "WHERE d.collection=? AND d.id=?",
                (key, document_id),
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
            tenant=row[7],
            principals=self._principals(key, document_id),
        )

    def _principals(self, key: str, document_id: str) -> frozenset[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT principal FROM document_principals WHERE collection=? AND document_id=?",
                (key, document_id),
            ).fetchall()
        return frozenset(r[0] for r in rows)

    def get_chunks(
        self, chunk_ids: Sequence[str], *, scope: AccessScope | None = None
    ) -> Mapping[str, Chunk]:
        """The chunks of ``chunk_ids`` that ``scope`` sees (others are left out)."""
        out: dict[str, Chunk] = {}
        access = scope_or_default(scope)
        acl, acl_params = acl_sql(access, "c", "document_id")
        ids = list(dict.fromkeys(chunk_ids))
        with self._lock:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                for row in self._conn.execute(
                    f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN collections k ON k.name = "
                    f"c.collection WHERE c.tenant=? AND c.id IN ({','.join('?' * len(part))}) "
                    f"AND {acl}",
                    (access.tenant, *part, *acl_params),
                ):
                    out[row[0]] = chunk_of(row)
        return out

    def iter_documents(
        self, collection: str, *, scope: AccessScope | None = None, batch_size: int = 256
    ) -> Iterator[StoredDocument]:
        """Pages through the documents by id (keyset), one read transaction per page, so a
        long copy neither holds a snapshot open nor misses a page to concurrent writes."""
        key = self._key(scope, collection)
        if key is None:
            return
        acl, acl_params = acl_sql(scope_or_default(scope), "d", "id")
        after = ""
        while True:
            with self._lock:
                self._conn.execute("BEGIN")
                try:
                    page = read_page(self._conn, key, after, batch_size, acl, acl_params)
                finally:
                    self._conn.execute("COMMIT")
            yield from page
            if len(page) < batch_size:
                return
            after = page[-1].document.id

    def tenants(self) -> list[str]:
        """Every tenant that owns a collection (operator bookkeeping, e.g. the upload area's
        orphan sweep; never an answer to a request)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT tenant FROM collections ORDER BY tenant"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def collections(self, *, scope: AccessScope | None = None) -> dict[str, dict[str, object]]:
        """The scope tenant's collections by name, with their model and counts (all ACLs)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT c.label, c.embedding_model, c.dimension, "
                "(SELECT count(*) FROM documents d WHERE d.collection=c.name), "
                "(SELECT count(*) FROM chunks k WHERE k.collection=c.name), c.language "
                "FROM collections c WHERE c.tenant=? ORDER BY c.label",
                (scope_or_default(scope).tenant,),
            ).fetchall()
        return {
            r[0]: {
                "embedding_model": r[1],
                "dimension": r[2],
                "documents": r[3],
                "chunks": r[4],
                "language": r[5],
            }
            for r in rows
        }

    def stats(self, *, scope: AccessScope | None = None) -> StoreStats:
        """Counts of the scope tenant's collections (ACLs are not applied to counts)."""
        cols = self.collections(scope=scope)
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
            "chunks of another tenant than their collection": "SELECT count(*) FROM chunks c "
            "JOIN collections k ON k.name=c.collection WHERE k.tenant != c.tenant",
            "documents with wrong chunk count": "SELECT count(*) FROM documents d WHERE "
            "d.chunk_count != (SELECT count(*) FROM chunks c WHERE c.collection=d.collection "
            "AND c.document_id=d.id)",
        }
        with self._lock:
            found = {k: self._conn.execute(q).fetchone()[0] for k, q in checks.items()}
            ok = self._conn.execute("PRAGMA integrity_check").fetchone()[0]
        problems = [f"{n} {k}" for k, n in found.items() if n]
        return problems if ok == "ok" else [*problems, f"sqlite integrity_check: {ok}"]

    # -- index versions (issue 13): ``sqlite_versions.py`` ---------------------------------------
    def active_version(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> IndexVersion | None:
        key = self._key(scope, collection)
        with self._lock:
            return None if key is None else versions.active(self._conn, key)

    def building_version(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> IndexVersion | None:
        key = self._key(scope, collection)
        with self._lock:
            return None if key is None else versions.building(self._conn, key)

    def begin_version(
        self,
        collection: str,
        embedding_model: str,
        dimension: int,
        *,
        scope: AccessScope | None = None,
    ) -> IndexVersion:
        with self._write() as db:
            return versions.begin(
                db, self._existing_key(scope, collection), embedding_model, dimension
            )

    def pending_chunks(
        self,
        collection: str,
        version: int,
        *,
        limit: int,
        after: int = 0,
        scope: AccessScope | None = None,
    ) -> list[PendingChunk]:
        key = self._existing_key(scope, collection)
        with self._lock:
            return versions.pending(self._conn, key, version, limit, after)

    def put_version_vectors(
        self,
        collection: str,
        version: int,
        refs: Sequence[int],
        vectors: F32,
        *,
        scope: AccessScope | None = None,
    ) -> int:
        with self._write() as db:
            return versions.put(db, self._existing_key(scope, collection), version, refs, vectors)

    def activate_version(
        self,
        collection: str,
        version: int,
        *,
        embed: EmbedFn | None = None,
        max_pending: int = 256,
        scope: AccessScope | None = None,
    ) -> bool:
        with self._write() as db:
            key = self._existing_key(scope, collection)
            return versions.activate(db, key, version, embed, max_pending)

    def abandon_version(
        self, collection: str, version: int, *, scope: AccessScope | None = None
    ) -> bool:
        with self._write() as db:
            return versions.abandon(db, self._existing_key(scope, collection), version)

    def _existing_key(self, scope: AccessScope | None, collection: str) -> str:
        key = self._key(scope, collection)
        if key is None:
            raise StorageError(
                f"no collection {collection!r} in this tenant",
                hint="`ragkeel collections list` shows the collections",
            )
        return key

    # -- search support -------------------------------------------------------------------------
    def collection_model(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> tuple[str | None, int] | None:
        key = self._key(scope, collection)
        with self._lock:
            row = self._conn.execute(
                "SELECT embedding_model, dimension FROM collections WHERE name=?", (key,)
            ).fetchone()
        return (row[0], int(row[1])) if row else None

    def collection_language(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> str | None:
        return self._collection_column(scope, collection, "language")

    def reindex_keywords(
        self, collection: str, language: str, *, scope: AccessScope | None = None
    ) -> int:
        """Re-analyse every chunk of the collection in ``language`` and record it, in one
        transaction; returns the chunks re-analysed. A new ``uid`` makes every segment (and
        segment cache) of the old analysis be rebuilt rather than refreshed."""
        analyzer = analyzer_for(language)
        with self._write() as db:
            key = self._existing_key(scope, collection)
            count = 0
            for rowid, text in keyword_texts(db, key):
                tf = analyzer.term_frequencies(text)
                db.execute(
                    "UPDATE chunk_terms SET terms=?, tfs=?, length=? WHERE chunk_rowid=?",
                    (*_posting_blobs(self._term_ids(db, list(tf)), tf), rowid),
                )
                count += 1
            db.execute(
                "UPDATE collections SET language=?, uid=? WHERE name=?",
                (analyzer.language, new_uid(), key),
            )
            deletion_log.bump(db, key)
        self.segments.forget(key)
        return count

    def revision(self, collection: str | None, *, scope: AccessScope | None = None) -> str:
        """``<label>:<uid>.<generation>.<index version>`` of each of the scope tenant's
        collections (``collection``: that one only), ``;``-joined; "" when there are none. Every
        write bumps the generation in its transaction (``deletion_log.bump``), the switch to a
        new index version gives the collection a new uid, and a dropped and re-created
        collection gets a new uid too, so no two states share a revision."""
        tenant = scope_or_default(scope).tenant
        sql = "SELECT label, uid, generation, index_version FROM collections WHERE tenant=?"
        args: tuple[str, ...] = (tenant,)
        if collection is not None:
            sql, args = sql + " AND label=?", (tenant, collection)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY label", args).fetchall()
        return ";".join(f"{r[0]}:{r[1]}.{r[2]}.{r[3]}" for r in rows)

    def search_keys(
        self, tenant: str, collection: str | None, model: str | None = None
    ) -> list[str]:
        """Storage keys of the tenant's collections (only ``collection`` when given); with
        ``model``, those a query of that model may search (``storage/query_models.py``:
        another model's collection is refused when named, or when no collection is of it)."""
        query = "SELECT name, label, embedding_model FROM collections WHERE tenant=?"
        params: tuple[str, ...] = (tenant,)
        if collection is not None:
            query, params = query + " AND label=?", (*params, collection)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY name", params).fetchall()
        found = [(str(key), str(label), model_) for key, label, model_ in rows]
        return searchable(model, found, named=collection is not None)

    def segment(self, collection: str) -> Segment:
        """The search segment of the collection stored under key ``collection`` (a default-
        tenant collection's key is its name), at its current generation."""
        return self.segments.get(collection)

    def key_language(self, key: str) -> str:
        """The language of the collection stored under ``key`` (its keyword index's)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT language FROM collections WHERE name=?", (key,)
            ).fetchone()
        return str(row[0]) if row else DEFAULT_LANGUAGE

    def known_term_ids(self, terms: Sequence[str]) -> list[int]:
        """Vocabulary ids of ``terms`` (in order, repeats kept), skipping terms never indexed."""
        with self._lock:
            unknown = [t for t in dict.fromkeys(terms) if t not in self._vocab]
            if unknown:
                q = f"SELECT term, id FROM vocab WHERE term IN ({','.join('?' * len(unknown))})"
                self._vocab.update(self._conn.execute(q, unknown).fetchall())
            return [self._vocab[t] for t in terms if t in self._vocab]

    def visible_mask(
        self, key: str, seg: Segment, flt: Filter | None, scope: AccessScope
    ) -> npt.NDArray[np.bool_] | None:
        """The rows of ``seg`` that pass ``flt`` and ``scope``'s ACL (None: every row)."""
        return self._masks.visible(key, seg, flt, scope)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _posting_blobs(ids: Sequence[int], tf: Mapping[str, int]) -> tuple[bytes, bytes, int]:
    """A chunk's ``chunk_terms`` row: term ids, their counts (capped at 65535), its length."""
    return (
        np.asarray(ids, np.int32).tobytes(),
        np.minimum(np.asarray(list(tf.values()), np.int64), 65535).astype(np.uint16).tobytes(),
        int(sum(tf.values())),
    )


def _write_principals(
    db: sqlite3.Connection, key: str, document_id: str, principals: frozenset[str]
) -> None:
    db.executemany(
        "INSERT INTO document_principals(collection, document_id, principal) VALUES (?,?,?)",
        [(key, document_id, p) for p in sorted(principals)],
    )

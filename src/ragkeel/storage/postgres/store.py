"""``PostgresDocumentStore``: documents, chunks, BM25 postings and pgvector embeddings in one
PostgreSQL database (issue 13), behind the same Protocols and contract suites as SQLite.

One transaction per document: ``upsert_document`` takes a transaction-level advisory lock on
(collection, document id) — so two writers of one document queue instead of failing on its
primary key — then replaces the document row, its chunks (with their embeddings), their
postings and the collection's BM25 statistics, and commits; a failure or a killed process
leaves the previous version. Writers of different documents run in parallel (the collection
row's statistics are updated last, so its row lock is held briefly).

Tenants and ACLs as in ``storage/tenancy.py``: a collection is (tenant, name) with a serial id;
chunk ids are unique within a tenant; a document's principals live on the document and are
copied onto its chunks, so the ACL is one more condition of the search query
(``filters.py``). Reads and changes by id apply the same scope in SQL; what the scope may not
see is absent.

Connections come from a ``psycopg_pool`` pool (``pool_size``) in autocommit mode, with the
pgvector types registered; the schema is checked (or migrated, ``migrate_on_start``) once on
open (``schema.py``). The two search indexes are in ``search.py``. ``export_documents``
iterates a collection's documents with their chunks and vectors (copying a collection between
stores or re-embedding it).

Languages (issue 15): ``collections.language`` (schema version 6) is the language the
collection's postings were analysed in (``storage/analyzer.py``, in Python, as in SQLite); a
write in another language is refused (``LANGUAGE_MISMATCH``) and ``reindex_keywords`` replaces
every posting of a collection with another language's in one transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool

from ragkeel.errors import EmbeddingModelMismatchError, StorageError
from ragkeel.languages import DEFAULT_LANGUAGE, check_language, language_mismatch
from ragkeel.storage.analyzer import analyzer_for
from ragkeel.storage.base import (
    EmbedFn,
    IndexVersion,
    PendingChunk,
    StoredDocument,
    StoredDocumentInfo,
    StoreStats,
)
from ragkeel.storage.postgres import schema
from ragkeel.storage.postgres import versions as index_versions
from ragkeel.storage.postgres.filters import where
from ragkeel.storage.postgres.search import PostgresKeywordIndex, PostgresVectorIndex
from ragkeel.storage.query_models import searchable
from ragkeel.storage.tenancy import check_name, check_principals, scope_or_default
from ragkeel.types import AccessScope, Chunk, Document

F32 = npt.NDArray[np.float32]
_CHUNK_COLUMNS = (
    "c.id, c.document_id, k.name, c.ordinal, c.text, c.start_, c.end_, c.title, c.source, "
    "c.heading_path, c.page, c.token_count, c.metadata"
)


@dataclass(frozen=True, slots=True)
class CollectionRow:
    """What a search needs of one collection: id, dimension, the BM25 statistics and the
    language its postings were analysed in."""

    id: int
    name: str
    dimension: int
    chunk_count: int
    total_length: int
    language: str = DEFAULT_LANGUAGE


def connect(url: str) -> psycopg.Connection[Any]:
    """One autocommit connection (migrations, checks); a clear error when unreachable."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise StorageError(
            f"cannot connect to the PostgreSQL store: {exc}".strip(),
            hint="check storage.postgres.url and that the server is running",
        ) from exc


def upgrade_schema(url: str) -> tuple[int, list[schema.Migration]]:
    """Apply the pending migrations (``ragkeel db upgrade``); (version now, steps applied)."""
    with connect(url) as conn:
        applied = schema.migrate(conn)
        return schema.current_version(conn), applied


class PostgresDocumentStore:
    """The PostgreSQL ``DocumentStore``; ``.keyword`` and ``.vectors`` search in the database."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        hnsw_ef_search: int = 200,
        exact_search_max_rows: int = 10_000,
        migrate_on_start: bool = True,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
    ) -> None:
        with connect(url) as conn:
            if migrate_on_start:
                schema.migrate(conn)
            schema.check_version(conn)
        self.hnsw_m, self.hnsw_ef_construction = hnsw_m, hnsw_ef_construction
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True},
            configure=lambda conn: _configure(conn, hnsw_ef_search),
            open=True,
            name="ragkeel-store",
        )
        self.keyword = PostgresKeywordIndex(self, k1=bm25_k1, b=bm25_b)
        self.vectors = PostgresVectorIndex(
            self, ef_search=hnsw_ef_search, exact_max_rows=exact_search_max_rows
        )

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool.connection() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

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
        """Written for ``document.tenant`` with ``document.principals`` as its ACL, analysed
        in the collection's language (``language`` for a new one, default English; another
        than an existing collection's is refused)."""
        if len(chunks) != len(vectors):
            raise StorageError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        tenant = check_name("tenant", document.tenant)
        check_name("collection", document.collection)
        principals = sorted(check_principals(document.principals))
        dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
        lang = check_language(language) if language is not None else None
        scope = AccessScope(tenant, all_principals=True)
        analyzer = analyzer_for(
            lang or self.collection_language(document.collection, scope=scope) or DEFAULT_LANGUAGE
        )
        postings = [analyzer.term_frequencies(c.index_text()) for c in chunks]
        lengths = [int(sum(tf.values())) for tf in postings]
        with self._write() as db:
            cid = self._ensure_collection(
                db, tenant, document.collection, embedding_model, dim, analyzer.language
            )
            _lock_documents(db, cid, [document.id])
            gone, gone_length = self._delete(db, cid, [document.id])[1:]
            db.execute(
                "INSERT INTO documents(collection_id, id, source, title, text, content_hash, "
                "metadata, principals, chunk_count, updated_at) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (
                    cid,
                    document.id,
                    document.source,
                    document.title,
                    document.text,
                    document.content_hash,
                    json.dumps(dict(document.metadata)),
                    principals,
                    len(chunks),
                    time.time(),
                ),
            )
            pks = [
                int(r[0])
                for r in db.execute(
                    "SELECT nextval('chunks_pk_seq') FROM generate_series(1, %s)", (len(chunks),)
                )
            ]
            rows = [
                (
                    pk,
                    cid,
                    tenant,
                    c.id,
                    c.document_id,
                    c.ordinal,
                    c.text,
                    c.start,
                    c.end,
                    c.title,
                    c.source,
                    json.dumps(list(c.heading_path)),
                    c.page,
                    c.token_count,
                    json.dumps(dict(c.metadata)),
                    principals,
                    length,
                    np.asarray(vec, np.float32),
                )
                for pk, c, length, vec in zip(pks, chunks, lengths, vectors, strict=True)
            ]
            try:
                with db.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO chunks(pk, collection_id, tenant, id, document_id, ordinal, "
                        "text, start_, end_, title, source, heading_path, page, token_count, "
                        "metadata, principals, length, embedding) VALUES "
                        "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                        rows,
                    )
            except psycopg.errors.UniqueViolation as exc:
                raise StorageError(
                    f"a chunk id of document {document.id!r} is already used by another "
                    f"document: {exc}",
                    hint="chunk ids must be unique within a tenant",
                ) from exc
            _copy_postings(db, cid, zip(pks, postings, strict=True))
            _add_stats(db, cid, len(chunks) - gone, sum(lengths) - gone_length)
            _bump(db, cid)

    def delete_documents(
        self, collection: str, document_ids: Iterable[str], *, scope: AccessScope | None = None
    ) -> int:
        """Removes those of ``document_ids`` that ``scope`` sees; returns how many."""
        ids = list(dict.fromkeys(document_ids))
        if not ids:
            return 0
        access = scope_or_default(scope)
        with self._write() as db:
            cid = self._collection_id(db, access, collection)
            if cid is None:
                return 0
            _lock_documents(db, cid, ids)
            visible = _visible_ids(db, cid, ids, access)
            removed, chunks, length = self._delete(db, cid, visible)
            _add_stats(db, cid, -chunks, -length)
            if removed or chunks:
                _bump(db, cid)
        return removed

    def relocate_document(
        self, collection: str, document_id: str, source: str, *, scope: AccessScope | None = None
    ) -> bool:
        """An unchanged document now comes from ``source``: its rows and vectors stay."""
        access = scope_or_default(scope)
        with self._write() as db:
            cid = self._collection_id(db, access, collection)
            if cid is None or not _visible_ids(db, cid, [document_id], access):
                return False
            db.execute(
                "UPDATE documents SET source=%s WHERE collection_id=%s AND id=%s",
                (source, cid, document_id),
            )
            db.execute(
                "UPDATE chunks SET source=%s WHERE collection_id=%s AND document_id=%s",
                (source, cid, document_id),
            )
            _bump(db, cid)
        return True

    def set_principals(
        self,
        collection: str,
        document_id: str,
        principals: Iterable[str],
        *,
        scope: AccessScope | None = None,
    ) -> bool:
        """Replace the ACL of a document ``scope`` sees (empty: public within the tenant)."""
        names = sorted(check_principals(principals))
        access = scope_or_default(scope)
        with self._write() as db:
            cid = self._collection_id(db, access, collection)
            if cid is None or not _visible_ids(db, cid, [document_id], access):
                return False
            db.execute(
                "UPDATE documents SET principals=%s WHERE collection_id=%s AND id=%s",
                (names, cid, document_id),
            )
            db.execute(
                "UPDATE chunks SET principals=%s WHERE collection_id=%s AND document_id=%s",
                (names, cid, document_id),
            )
            _bump(db, cid)
        return True

    def drop_collection(self, collection: str, *, scope: AccessScope | None = None) -> int:
        """Remove the scope tenant's ``collection`` with everything in it, whatever the ACLs."""
        access = scope_or_default(scope)
        with self._write() as db:
            cid = self._collection_id(db, access, collection)
            if cid is None:
                return 0
            (removed,) = db.execute(
                "SELECT count(*) FROM documents WHERE collection_id=%s", (cid,)
            ).fetchone() or (0,)
            db.execute("DELETE FROM postings WHERE collection_id=%s", (cid,))
            db.execute("DELETE FROM chunks WHERE collection_id=%s", (cid,))
            db.execute("DELETE FROM collections WHERE id=%s", (cid,))
            db.execute(f"DROP INDEX IF EXISTS {vector_index_name(cid)}")
        return int(removed)

    def _delete(
        self, db: psycopg.Connection[Any], cid: int, ids: Sequence[str]
    ) -> tuple[int, int, int]:
        """Delete documents with their chunks (postings go by cascade); (documents, chunks,
        their total length) removed."""
        if not ids:
            return 0, 0, 0
        row = db.execute(
            "WITH gone AS (DELETE FROM chunks WHERE collection_id=%s AND document_id = ANY(%s) "
            "RETURNING length) SELECT count(*), coalesce(sum(length), 0) FROM gone",
            (cid, list(ids)),
        ).fetchone()
        chunks, length = (int(row[0]), int(row[1])) if row else (0, 0)
        removed = db.execute(
            "DELETE FROM documents WHERE collection_id=%s AND id = ANY(%s)", (cid, list(ids))
        ).rowcount
        return removed, chunks, length

    def _ensure_collection(
        self,
        db: psycopg.Connection[Any],
        tenant: str,
        name: str,
        model: str | None,
        dim: int,
        language: str,
    ) -> int:
        """The id of the tenant's collection ``name``, created in ``language`` if new; vectors
        of another model or dimension than the collection's are refused, and so are postings
        of another language (``LANGUAGE_MISMATCH``)."""
        # FOR KEY SHARE: a re-embedding's switch (``versions.activate``) waits for this write,
        # or this write for the switch, so no vector of the old model lands after it; a
        # reindex (FOR UPDATE) too, so no posting of the old language lands after it
        row = db.execute(
            "SELECT id, embedding_model, dimension, language FROM collections "
            "WHERE tenant=%s AND name=%s FOR KEY SHARE",
            (tenant, name),
        ).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO collections(tenant, name, language) VALUES (%s, %s, %s) "
                "ON CONFLICT (tenant, name) DO NOTHING",
                (tenant, name, language),
            )
            row = db.execute(
                "SELECT id, embedding_model, dimension, language FROM collections "
                "WHERE tenant=%s AND name=%s FOR KEY SHARE",
                (tenant, name),
            ).fetchone()
        assert row is not None
        cid, stored_model, stored_dim = int(row[0]), row[1], int(row[2])
        if row[3] != language:
            raise language_mismatch(name, str(row[3]), language)
        if (model is not None and stored_model is None) or (dim and not stored_dim):
            updated = db.execute(
                "UPDATE collections SET embedding_model = coalesce(embedding_model, %s), "
                "dimension = CASE WHEN dimension = 0 THEN %s ELSE dimension END WHERE id=%s "
                "RETURNING embedding_model, dimension",
                (model, dim, cid),
            ).fetchone()
            assert updated is not None
            if dim and not stored_dim and int(updated[1]) == dim:
                self._create_vector_index(db, cid, dim)
            stored_model, stored_dim = updated[0], int(updated[1])
        if (model is not None and stored_model not in (None, model)) or (
            dim and stored_dim not in (0, dim)
        ):
            raise EmbeddingModelMismatchError(
                f"collection {name!r} was indexed with {stored_model} ({stored_dim} dims); "
                f"cannot add vectors from {model} ({dim} dims)",
                hint="ingest into another --collection, drop this one first, or move it to the "
                "new model with `ragkeel collections reembed`",
            )
        return cid

    def _create_vector_index(self, db: psycopg.Connection[Any], cid: int, dim: int) -> None:
        """The collection's own HNSW graph (cosine) over its vectors, cast to its dimension.
        Only rows of that dimension: a re-embedding's switch to another dimension builds it in
        the transaction that replaced the vectors, beside the old rows' versions (issue 13)."""
        db.execute(
            f"CREATE INDEX IF NOT EXISTS {vector_index_name(cid)} ON chunks USING hnsw "
            f"((embedding::vector({int(dim)})) vector_cosine_ops) "
            f"WITH (m = {int(self.hnsw_m)}, ef_construction = {int(self.hnsw_ef_construction)}) "
            f"WHERE collection_id = {int(cid)} AND vector_dims(embedding) = {int(dim)}"
        )

    def rebuild_vector_index(self, collection: str, *, scope: AccessScope | None = None) -> None:
        """Drop and build the collection's HNSW index again in one go (faster than growing it
        row by row after a bulk load; ``maintenance_work_mem`` bounds the build's memory)."""
        access = scope_or_default(scope)
        with self._write() as db:
            cid = self._collection_id(db, access, collection)
            row = db.execute("SELECT dimension FROM collections WHERE id=%s", (cid,)).fetchone()
            if cid is None or row is None or not row[0]:
                return
            db.execute(f"DROP INDEX IF EXISTS {vector_index_name(cid)}")
            self._create_vector_index(db, cid, int(row[0]))

    def _collection_id(
        self, db: psycopg.Connection[Any], scope: AccessScope, collection: str
    ) -> int | None:
        row = db.execute(
            "SELECT id FROM collections WHERE tenant=%s AND name=%s", (scope.tenant, collection)
        ).fetchone()
        return int(row[0]) if row else None

    # -- reads ----------------------------------------------------------------------------------
    def document_info(
        self, collection: str, document_id: str, *, scope: AccessScope | None = None
    ) -> StoredDocumentInfo | None:
        doc = self._document_row(
            collection, document_id, scope, "d.id, d.source, d.content_hash, d.chunk_count"
        )
        if doc is None:
            return None
        row, principals = doc
        return StoredDocumentInfo(row[0], row[1], row[2], row[3], principals=principals)

    def get_document(
        self, collection: str, document_id: str, *, scope: AccessScope | None = None
    ) -> Document | None:
        doc = self._document_row(
            collection,
            document_id,
            scope,
            "d.id, k.name, d.source, d.title, d.text, d.content_hash, d.metadata, k.tenant",
        )
        if doc is None:
            return None
        row, principals = doc
        return Document(
            id=row[0],
            collection=row[1],
            source=row[2],
            title=row[3],
            text=row[4],
            content_hash=row[5],
            metadata=row[6],
            tenant=row[7],
            principals=principals,
        )

    def _document_row(
        self, collection: str, document_id: str, scope: AccessScope | None, columns: str
    ) -> tuple[tuple[Any, ...], frozenset[str]] | None:
        access = scope_or_default(scope)
        acl, params = where(None, access, "d")
        with self.connection() as conn:
            row = conn.execute(
                f"SELECT {columns}, d.principals FROM documents d "
                "JOIN collections k ON k.id = d.collection_id "
                f"WHERE k.tenant=%s AND k.name=%s AND d.id=%s AND {acl}",
                (access.tenant, collection, document_id, *params),
            ).fetchone()
        if row is None:
            return None
        return tuple(row[:-1]), frozenset(row[-1])

    def documents_by_source(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> Mapping[str, Sequence[str]]:
        access = scope_or_default(scope)
        acl, params = where(None, access, "d")
        out: dict[str, list[str]] = {}
        with self.connection() as conn:
            for source, doc_id in conn.execute(
                "SELECT d.source, d.id FROM documents d JOIN collections k "
                f"ON k.id = d.collection_id WHERE k.tenant=%s AND k.name=%s AND {acl} "
                "ORDER BY d.source, d.id",
                (access.tenant, collection, *params),
            ):
                out.setdefault(source, []).append(doc_id)
        return out

    def get_chunks(
        self, chunk_ids: Sequence[str], *, scope: AccessScope | None = None
    ) -> Mapping[str, Chunk]:
        """The chunks of ``chunk_ids`` that ``scope`` sees (others are left out)."""
        access = scope_or_default(scope)
        acl, params = where(None, access)
        with self.connection() as conn:
            rows = conn.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks c JOIN collections k "
                f"ON k.id = c.collection_id WHERE c.tenant=%s AND c.id = ANY(%s) AND {acl}",
                (access.tenant, list(dict.fromkeys(chunk_ids)), *params),
            ).fetchall()
        return {row[0]: _chunk(row) for row in rows}

    def export_documents(
        self, collection: str, *, scope: AccessScope | None = None, batch: int = 100
    ) -> Iterator[tuple[Document, list[Chunk], F32]]:
        """Every document of the collection that ``scope`` sees, in id order, with its chunks
        (in ordinal order) and their vectors; read in batches of ``batch`` documents."""
        access = scope_or_default(scope)
        after = ""
        while True:
            with self.connection() as conn:
                cid = self._collection_id(conn, access, collection)
                if cid is None:
                    return
                acl, params = where(None, access, "d")
                ids = [
                    r[0]
                    for r in conn.execute(
                        f"SELECT d.id FROM documents d WHERE d.collection_id=%s AND d.id > %s "
                        f"AND {acl} ORDER BY d.id LIMIT %s",
                        (cid, after, *params, batch),
                    )
                ]
                if not ids:
                    return
                rows = conn.execute(
                    f"SELECT {_CHUNK_COLUMNS}, c.embedding FROM chunks c JOIN collections k "
                    "ON k.id = c.collection_id WHERE c.collection_id=%s AND c.document_id = ANY(%s) "
                    "ORDER BY c.document_id, c.ordinal",
                    (cid, ids),
                ).fetchall()
            by_doc: dict[str, list[tuple[Any, ...]]] = {}
            for row in rows:
                by_doc.setdefault(row[1], []).append(tuple(row))
            for doc_id in ids:
                doc = self.get_document(collection, doc_id, scope=access)
                if doc is None:  # deleted meanwhile
                    continue
                chunk_rows = by_doc.get(doc_id, [])
                vectors = [_array(r[-1]) for r in chunk_rows if r[-1] is not None]
                matrix = np.stack(vectors) if vectors else np.zeros((0, 0), np.float32)
                yield doc, [_chunk(r) for r in chunk_rows], matrix
            after = ids[-1]

    def iter_documents(
        self, collection: str, *, scope: AccessScope | None = None, batch_size: int = 256
    ) -> Iterator[StoredDocument]:
        """``export_documents`` as the protocol's records (issue 13: collections copy)."""
        for doc, chunks, vectors in self.export_documents(
            collection, scope=scope, batch=batch_size
        ):
            yield StoredDocument(doc, chunks, vectors)

    def collection_language(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> str | None:
        row = self._collection_row(scope, collection, "language")
        return str(row[0]) if row else None

    def reindex_keywords(
        self, collection: str, language: str, *, scope: AccessScope | None = None
    ) -> int:
        """Every posting of the collection replaced by ``language``'s analysis, the chunks'
        lengths and the collection's statistics with them, in one transaction (the collection
        row locked: writers wait); returns the chunks re-analysed."""
        analyzer = analyzer_for(language)
        with self._write() as db:
            cid = self._existing_id(db, scope, collection)
            db.execute("SELECT 1 FROM collections WHERE id=%s FOR UPDATE", (cid,))
            db.execute("DELETE FROM postings WHERE collection_id=%s", (cid,))
            count = total = 0
            after = -1
            while True:
                rows = db.execute(
                    f"SELECT c.pk, {_CHUNK_COLUMNS} FROM chunks c JOIN collections k "
                    "ON k.id = c.collection_id WHERE c.collection_id=%s AND c.pk > %s "
                    "ORDER BY c.pk LIMIT 500",
                    (cid, after),
                ).fetchall()
                if not rows:
                    break
                postings = [
                    (int(r[0]), analyzer.term_frequencies(_chunk(r[1:]).index_text())) for r in rows
                ]
                _copy_postings(db, cid, postings)
                with db.cursor() as cur:
                    cur.executemany(
                        "UPDATE chunks SET length=%s WHERE pk=%s",
                        [(sum(tf.values()), pk) for pk, tf in postings],
                    )
                count += len(rows)
                total += sum(sum(tf.values()) for _, tf in postings)
                after = int(rows[-1][0])
            db.execute(
                "UPDATE collections SET language=%s, total_length=%s WHERE id=%s",
                (analyzer.language, total, cid),
            )
            _bump(db, cid)
        return count

    def collection_model(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> tuple[str | None, int] | None:
        row = self._collection_row(scope, collection, "embedding_model, dimension")
        return (row[0], int(row[1])) if row else None

    def _collection_row(
        self, scope: AccessScope | None, collection: str, columns: str
    ) -> tuple[Any, ...] | None:
        """``columns`` (names from this module) of the scope tenant's ``collection``."""
        access = scope_or_default(scope)
        with self.connection() as conn:
            row = conn.execute(
                f"SELECT {columns} FROM collections WHERE tenant=%s AND name=%s",
                (access.tenant, collection),
            ).fetchone()
        return tuple(row) if row else None

    # -- index versions (issue 13): ``versions.py`` --------------------------------------------
    def active_version(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> IndexVersion | None:
        with self.connection() as conn:
            cid = self._collection_id(conn, scope_or_default(scope), collection)
            return None if cid is None else index_versions.active(conn, cid)

    def building_version(
        self, collection: str, *, scope: AccessScope | None = None
    ) -> IndexVersion | None:
        with self.connection() as conn:
            cid = self._collection_id(conn, scope_or_default(scope), collection)
            return None if cid is None else index_versions.building(conn, cid)

    def begin_version(
        self,
        collection: str,
        embedding_model: str,
        dimension: int,
        *,
        scope: AccessScope | None = None,
    ) -> IndexVersion:
        with self._write() as db:
            cid = self._existing_id(db, scope, collection)
            return index_versions.begin(db, cid, embedding_model, dimension)

    def pending_chunks(
        self,
        collection: str,
        version: int,
        *,
        limit: int,
        after: int = 0,
        scope: AccessScope | None = None,
    ) -> list[PendingChunk]:
        with self.connection() as conn:
            cid = self._existing_id(conn, scope, collection)
            return index_versions.pending(conn, cid, version, limit, after, _CHUNK_COLUMNS, _chunk)

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
            cid = self._existing_id(db, scope, collection)
            return index_versions.put(db, cid, version, refs, vectors)

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
            cid = self._existing_id(db, scope, collection)
            return index_versions.activate(
                db,
                cid,
                version,
                embed=embed,
                max_pending=max_pending,
                chunk_source=(_CHUNK_COLUMNS, _chunk),
                index_name=vector_index_name(cid),
                create_index=self._create_vector_index,
            )

    def abandon_version(
        self, collection: str, version: int, *, scope: AccessScope | None = None
    ) -> bool:
        with self._write() as db:
            cid = self._existing_id(db, scope, collection)
            return index_versions.abandon(db, cid, version)

    def _existing_id(
        self, db: psycopg.Connection[Any], scope: AccessScope | None, collection: str
    ) -> int:
        cid = self._collection_id(db, scope_or_default(scope), collection)
        if cid is None:
            raise StorageError(
                f"no collection {collection!r} in this tenant",
                hint="`ragkeel collections list` shows the collections",
            )
        return cid

    def revision(self, collection: str | None, *, scope: AccessScope | None = None) -> str:
        """``<name>:<id>.<revision>.<index version>`` of each of the scope tenant's collections
        (``collection``: that one only), ``;``-joined; "" when there are none. The writes bump
        ``revision`` in their transaction (``_bump``), the switch changes ``index_version``, a
        re-created collection has a new ``id``."""
        tenant = scope_or_default(scope).tenant
        sql = "SELECT name, id, revision, index_version FROM collections WHERE tenant=%s"
        args: tuple[str, ...] = (tenant,)
        if collection is not None:
            sql, args = sql + " AND name=%s", (tenant, collection)
        with self.connection() as conn:
            rows = conn.execute(sql + " ORDER BY name", args).fetchall()
        return ";".join(f"{r[0]}:{r[1]}.{r[2]}.{r[3]}" for r in rows)

    def tenants(self) -> list[str]:
        """Every tenant that owns a collection (operator bookkeeping, never a request's answer)."""
        with self.connection() as conn:
            rows = conn.execute("SELECT DISTINCT tenant FROM collections ORDER BY tenant")
            return [str(r[0]) for r in rows]

    def collections(self, *, scope: AccessScope | None = None) -> dict[str, dict[str, object]]:
        """The scope tenant's collections by name, with their model and counts (all ACLs)."""
        with self.connection() as conn:
            rows = conn.execute(
                "SELECT k.name, k.embedding_model, k.dimension, "
                "(SELECT count(*) FROM documents d WHERE d.collection_id = k.id), k.chunk_count, "
                "k.language FROM collections k WHERE k.tenant=%s ORDER BY k.name",
                (scope_or_default(scope).tenant,),
            ).fetchall()
        return {
            r[0]: {
                "embedding_model": r[1],
                "dimension": r[2],
                "documents": int(r[3]),
                "chunks": int(r[4]),
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

    def search_collections(
        self, tenant: str, collection: str | None, model: str | None = None
    ) -> list[CollectionRow]:
        """The tenant's collections (only ``collection`` when given), in name order; with
        ``model``, those a query of that model may search (``storage/query_models.py``:
        another model's collection is refused when named, or when no collection is of it)."""
        query = (
            "SELECT id, name, dimension, chunk_count, total_length, embedding_model, language "
            "FROM collections WHERE tenant=%s"
        )
        params: tuple[str, ...] = (tenant,)
        if collection is not None:
            query, params = query + " AND name=%s", (*params, collection)
        with self.connection() as conn:
            rows = conn.execute(query + " ORDER BY name", params).fetchall()
        found = [
            (
                CollectionRow(int(r[0]), r[1], int(r[2]), int(r[3]), int(r[4]), str(r[6])),
                str(r[1]),
                r[5],
            )
            for r in rows
        ]
        return searchable(model, found, named=collection is not None)

    def check_integrity(self) -> list[str]:
        """Problems found (empty when consistent): rows out of step across the tables."""
        checks = {
            "chunks without vector in a collection with a dimension": "SELECT count(*) FROM "
            "chunks c JOIN collections k ON k.id=c.collection_id "
            "WHERE k.dimension > 0 AND c.embedding IS NULL",
            "chunks of another tenant than their collection": "SELECT count(*) FROM chunks c "
            "JOIN collections k ON k.id=c.collection_id WHERE k.tenant != c.tenant",
            "chunks whose ACL differs from their document's": "SELECT count(*) FROM chunks c "
            "JOIN documents d ON d.collection_id=c.collection_id AND d.id=c.document_id "
            "WHERE d.principals != c.principals",
            "documents with wrong chunk count": "SELECT count(*) FROM documents d WHERE "
            "d.chunk_count != (SELECT count(*) FROM chunks c WHERE "
            "c.collection_id=d.collection_id AND c.document_id=d.id)",
            "chunks whose length is not their postings' total": "SELECT count(*) FROM chunks c "
            "WHERE c.length != (SELECT coalesce(sum(p.tf), 0) FROM postings p "
            "WHERE p.chunk_pk = c.pk)",
            "collections with wrong BM25 statistics": "SELECT count(*) FROM collections k WHERE "
            "(k.chunk_count, k.total_length) != (SELECT count(*), coalesce(sum(length), 0) "
            "FROM chunks c WHERE c.collection_id = k.id)",
        }
        with self.connection() as conn:
            found = {k: conn.execute(q).fetchone() for k, q in checks.items()}
        return [f"{row[0]} {k}" for k, row in found.items() if row and row[0]]

    def close(self) -> None:
        self._pool.close()


def _configure(conn: psycopg.Connection[Any], ef_search: int) -> None:
    """Each pooled connection: pgvector's types, and the HNSW search settings for the session
    (so a search at the default ``ef_search`` needs no transaction to set them)."""
    register_vector(conn)
    conn.execute(
        "SELECT set_config('hnsw.ef_search', %s, false), "
        "set_config('hnsw.iterative_scan', 'relaxed_order', false)",
        (str(ef_search),),
    )


def vector_index_name(cid: int) -> str:
    return f"chunks_hnsw_{int(cid)}"


def _lock_documents(db: psycopg.Connection[Any], cid: int, ids: Sequence[str]) -> None:
    """Transaction-level advisory locks on (collection, document id), taken in one order."""
    db.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s::text || ':' || x, 0)) "
        "FROM (SELECT DISTINCT x FROM unnest(%s::text[]) AS x ORDER BY x) s",
        (str(cid), list(ids)),
    )


def _visible_ids(
    db: psycopg.Connection[Any], cid: int, ids: Sequence[str], scope: AccessScope
) -> list[str]:
    acl, params = where(None, scope, "d")
    rows = db.execute(
        f"SELECT d.id FROM documents d WHERE d.collection_id=%s AND d.id = ANY(%s) AND {acl}",
        (cid, list(ids), *params),
    )
    return [str(r[0]) for r in rows]


def _copy_postings(
    db: psycopg.Connection[Any], cid: int, postings: Iterable[tuple[int, Mapping[str, int]]]
) -> None:
    """``postings`` rows of the collection: (chunk pk, term -> tf) pairs, by COPY."""
    with (
        db.cursor() as cur,
        cur.copy("COPY postings(collection_id, term, chunk_pk, tf) FROM STDIN") as copy,
    ):
        for pk, tf in postings:
            for term, count in tf.items():
                copy.write_row((cid, term, pk, count))


def _bump(db: psycopg.Connection[Any], cid: int) -> None:
    """A new revision of the collection (``revision``), in the writing transaction."""
    db.execute("UPDATE collections SET revision = revision + 1 WHERE id=%s", (cid,))


def _add_stats(db: psycopg.Connection[Any], cid: int, chunks: int, length: int) -> None:
    if chunks or length:
        db.execute(
            "UPDATE collections SET chunk_count = chunk_count + %s, "
            "total_length = total_length + %s WHERE id=%s",
            (chunks, length, cid),
        )


def _chunk(row: Sequence[Any]) -> Chunk:
    return Chunk(
        id=row[0],
        document_id=row[1],
        collection=row[2],
        ordinal=row[3],
        text=row[4],
        start=row[5],
        end=row[6],
        title=row[7],
        source=row[8],
        heading_path=tuple(row[9]),
        page=row[10],
        token_count=row[11],
        metadata=row[12],
    )


def _array(value: Any) -> F32:
    """A ``vector`` column as loaded (pgvector's ``Vector``) as float32."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, np.float32)

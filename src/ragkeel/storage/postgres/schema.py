"""The PostgreSQL store's schema as ordered, versioned migrations (issue 13).

``schema_version`` holds one row per applied step (version, description, time). ``migrate``
applies the steps above the database's version in order, each in its own transaction together
with its ``schema_version`` row, under a transaction-level advisory lock, so replicas that
start at once upgrade the database exactly once. ``ragkeel db upgrade`` runs it; so does
opening a store with ``storage.postgres.migrate_on_start``. A store refuses a database whose
version is not ``SCHEMA_VERSION`` (older: run the upgrade; newer: a newer ragkeel wrote it).

Tables (version 2):

- ``collections``: one row per (tenant, name) with a serial ``id`` every other table refers to;
  the embedding model and dimension recorded by the first vectors; ``chunk_count`` and
  ``total_length`` (analysed terms over all chunks) are the BM25 collection statistics N and
  avgdl, kept in step by every write (version 2; version 1 computed nothing and is backfilled);
- ``documents``: (collection_id, id) with the ACL principals (``text[]``; empty: public in the
  tenant) and the content hash;
- ``chunks``: ``pk`` (bigint from a sequence), the chunk id unique per tenant, the filterable
  columns (source, document id, ``metadata`` jsonb), the document's principals copied for
  filtering inside the search, ``length`` (BM25 document length) and ``embedding`` (``vector``
  without a fixed dimension: each collection gets its own partial HNSW index over
  ``embedding::vector(dim)``, made when its dimension is known, ``store.py``);
- ``postings``: (collection_id, term, chunk_pk) -> tf, the inverted lists BM25 is computed from
  at query time (``search.py``); rows go with their chunk (``ON DELETE CASCADE``).

Version 3 versions a collection's vector index (issue 13, ``versions.py``), additively:
``collections.index_version`` is the active version (the vectors in ``chunks.embedding``);
``index_builds`` holds at most one version under construction per collection, and
``version_vectors`` its vectors by (chunk pk, version), going with their chunk.

Version 4 stores vectors inline (``SET STORAGE PLAIN``): a chunk row (its text and a 1.5 kB
vector) passes the 2 kB TOAST threshold, and out of line every comparison of an exact scan
fetched its TOAST row (about 4x slower on 10,000 rows; rows written before keep their layout
until rewritten: re-ingest or ``ragkeel collections reembed``). It also rebuilds an HNSW index
made before version 3 with the dimension predicate the dense query carries (without it the
planner expected a handful of rows and chose a sequential scan), keeping its build parameters.

Version 5 gives each collection a ``revision`` (issue 14): a counter bumped in the transaction
of every write that can change an answer (upsert, delete, relocate, an ACL change, an index
version's switch); with the collection's serial ``id`` (new when a dropped collection is made
again) and ``index_version`` it is the store's ``revision`` the answer cache keys on.

Version 6 records the language each collection's postings were analysed in (issue 15,
``collections.language``; ``english`` for every collection written before, whose postings are
English); queries are analysed in it (``search.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragkeel.errors import StorageError

SCHEMA_VERSION = 6
_LOCK_ID = 0x7261676B65656C  # "ragkeel": one advisory lock for every migration


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "collections, documents, chunks with vectors, postings",
        """
        CREATE EXTENSION IF NOT EXISTS vector;
        CREATE TABLE collections (
            id serial PRIMARY KEY,
            tenant text NOT NULL,
            name text NOT NULL,
            embedding_model text,
            dimension integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant, name)
        );
        CREATE TABLE documents (
            collection_id integer NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            id text NOT NULL,
            source text NOT NULL,
            title text NOT NULL,
            text text NOT NULL,
            content_hash text NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}',
            principals text[] NOT NULL DEFAULT '{}',
            chunk_count integer NOT NULL,
            updated_at double precision NOT NULL,
            PRIMARY KEY (collection_id, id)
        );
        CREATE INDEX documents_by_source ON documents(collection_id, source);
        CREATE SEQUENCE chunks_pk_seq AS bigint;
        CREATE TABLE chunks (
            pk bigint PRIMARY KEY DEFAULT nextval('chunks_pk_seq'),
            collection_id integer NOT NULL,
            tenant text NOT NULL,
            id text NOT NULL,
            document_id text NOT NULL,
            ordinal integer NOT NULL,
            text text NOT NULL,
            start_ integer NOT NULL,
            end_ integer NOT NULL,
            title text NOT NULL,
            source text NOT NULL,
            heading_path jsonb NOT NULL DEFAULT '[]',
            page integer,
            token_count integer NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}',
            principals text[] NOT NULL DEFAULT '{}',
            length integer NOT NULL,
            embedding vector,
            UNIQUE (tenant, id),
            FOREIGN KEY (collection_id, document_id)
                REFERENCES documents(collection_id, id) ON DELETE CASCADE
        );
        ALTER SEQUENCE chunks_pk_seq OWNED BY chunks.pk;
        CREATE INDEX chunks_by_document ON chunks(collection_id, document_id);
        CREATE TABLE postings (
            collection_id integer NOT NULL,
            term text NOT NULL,
            chunk_pk bigint NOT NULL REFERENCES chunks(pk) ON DELETE CASCADE,
            tf integer NOT NULL,
            PRIMARY KEY (collection_id, term, chunk_pk)
        );
        CREATE INDEX postings_by_chunk ON postings(chunk_pk);
        """,
    ),
    Migration(
        2,
        "BM25 collection statistics kept with every write (chunk count, total length)",
        """
        ALTER TABLE collections ADD COLUMN chunk_count bigint NOT NULL DEFAULT 0;
        ALTER TABLE collections ADD COLUMN total_length bigint NOT NULL DEFAULT 0;
        UPDATE collections k SET chunk_count = s.n, total_length = s.total
            FROM (SELECT collection_id, count(*) AS n, coalesce(sum(length), 0) AS total
                  FROM chunks GROUP BY collection_id) s
            WHERE s.collection_id = k.id;
        """,
    ),
    Migration(
        3,
        "index versions: the active version pointer, a build and its vectors beside it",
        """
        ALTER TABLE collections ADD COLUMN index_version integer NOT NULL DEFAULT 1;
        CREATE TABLE index_builds (
            collection_id integer PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE,
            version integer NOT NULL,
            embedding_model text NOT NULL,
            dimension integer NOT NULL,
            started_at double precision NOT NULL
        );
        CREATE TABLE version_vectors (
            chunk_pk bigint NOT NULL REFERENCES chunks(pk) ON DELETE CASCADE,
            version integer NOT NULL,
            embedding vector NOT NULL,
            PRIMARY KEY (chunk_pk, version)
        );
        """,
    ),
    Migration(
        4,
        "vectors stored inline; HNSW indexes limited to their collection's dimension",
        """
        ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE PLAIN;
        ALTER TABLE version_vectors ALTER COLUMN embedding SET STORAGE PLAIN;
        DO $$
        DECLARE r record;
        BEGIN
            FOR r IN
                SELECT k.id, k.dimension, c.reloptions
                FROM collections k
                JOIN pg_class c ON c.relname = 'chunks_hnsw_' || k.id
                JOIN pg_indexes i ON i.indexname = c.relname
                WHERE k.dimension > 0 AND i.indexdef NOT LIKE '%vector_dims%'
            LOOP
                EXECUTE format('DROP INDEX %I', 'chunks_hnsw_' || r.id);
                EXECUTE format(
                    'CREATE INDEX %I ON chunks USING hnsw ((embedding::vector(%s)) '
                    'vector_cosine_ops) WITH (%s) '
                    'WHERE collection_id = %s AND vector_dims(embedding) = %s',
                    'chunks_hnsw_' || r.id, r.dimension,
                    coalesce(array_to_string(r.reloptions, ', '), 'm=16, ef_construction=64'),
                    r.id, r.dimension);
            END LOOP;
        END $$;
        """,
    ),
    Migration(
        5,
        "collection revisions: bumped by every write that can change an answer (issue 14)",
        "ALTER TABLE collections ADD COLUMN revision bigint NOT NULL DEFAULT 0;",
    ),
    Migration(
        6,
        "the language of each collection's keyword index (issue 15)",
        "ALTER TABLE collections ADD COLUMN language text NOT NULL DEFAULT 'english';",
    ),
)


def current_version(conn: Any) -> int:
    """The database's schema version (0: no ragkeel schema yet)."""
    exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: Any, target: int = SCHEMA_VERSION) -> list[Migration]:
    """Apply the steps above the database's version up to ``target``; returns those applied.
    ``conn`` is a psycopg connection in autocommit mode."""
    if target > SCHEMA_VERSION:
        raise StorageError(f"no schema version {target} (the newest is {SCHEMA_VERSION})")
    applied: list[Migration] = []
    for step in MIGRATIONS:
        if step.version > target:
            break
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, "
                "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            version = current_version(conn)
            if version > SCHEMA_VERSION:
                raise _newer(version)
            if step.version <= version:
                continue
            conn.execute(step.sql)
            conn.execute(
                "INSERT INTO schema_version(version, description) VALUES (%s, %s)",
                (step.version, step.description),
            )
            applied.append(step)
    return applied


def check_version(conn: Any) -> None:
    """Refuse a database whose schema is not the one this code writes."""
    version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise _newer(version)
    if version < SCHEMA_VERSION:
        raise StorageError(
            f"the PostgreSQL store is at schema version {version}, this ragkeel needs "
            f"{SCHEMA_VERSION}",
            hint="run `ragkeel db upgrade` (or set storage.postgres.migrate_on_start: true)",
        )


def _newer(version: int) -> StorageError:
    return StorageError(
        f"the PostgreSQL store is at schema version {version}, newer than this ragkeel's "
        f"{SCHEMA_VERSION}",
        hint="upgrade ragkeel to the version that wrote this database",
    )

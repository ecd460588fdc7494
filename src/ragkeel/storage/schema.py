"""SQLite schema of the default store (one file, WAL), and its migrations.

Version 2 makes in-memory segments refreshable in place (see ``segment_source.py``):

- ``chunks.rowid`` is ``AUTOINCREMENT``, so a rowid is never reused, even after the highest row
  is deleted: rows newer than a segment are exactly ``rowid > segment.max_rowid``;
- ``chunk_deletions`` logs every deleted chunk rowid with the generation that deleted it, in the
  same transaction as the delete, so a segment learns what to tombstone without a table scan.
  The log is pruned by the writer; ``collections.deletions_floor`` is the newest generation
  whose entries may be gone (a segment older than that is rebuilt);
- ``collections.uid`` is random per collection incarnation, so a segment of a dropped and
  re-created collection (whose generation restarts at 0) is never mistaken for the new one.

Version 3 gives every document a tenant and an ACL (issue 11):

- a collection belongs to a tenant: ``collections.tenant`` and ``collections.label`` (the name
  the tenant uses) identify it, ``collections.name`` is its *storage key*, the value every
  ``collection`` column of the other tables holds. The key of a default-tenant collection is
  its label, so a store written before tenants keeps its rows, segments and segment caches as
  they were; any other tenant's key is ``<tenant>\x1f<label>`` (names cannot hold control
  characters, so keys never collide). The key is only ever *built* when a collection is
  created; reads look a collection up by (tenant, label), never by a key built from input;
- ``chunks.tenant`` with ``UNIQUE (tenant, id)``: chunk ids are unique within a tenant (two
  tenants may ingest the same text and get the same ids);
- ``document_principals`` lists the ACL principals of restricted documents (none: public within
  the tenant); rows go with their document (``ON DELETE CASCADE``).

Version 4 versions a collection's vector index (issue 13, ``sqlite_versions.py``), additively:

- ``collections.index_version`` is the active version, the one ``chunk_vectors`` holds and
  searches read;
- ``index_builds`` holds at most one version under construction per collection (its model and
  dimension), and ``version_vectors`` its vectors, keyed by (chunk rowid, version), so they go
  with their chunk (``ON DELETE CASCADE``) and never mix with the active ones until the switch.

Version 5 records the language each collection's keyword index was built with (issue 15,
``storage/analyzer.py``): ``collections.language``, ``english`` for every collection written
before (their postings are English).
"""

from __future__ import annotations

import sqlite3
import uuid

from ragkeel.errors import StorageError

SCHEMA_VERSION = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    embedding_model TEXT,
    dimension INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0,
    uid TEXT NOT NULL DEFAULT '',
    deletions_floor INTEGER NOT NULL DEFAULT 0,
    tenant TEXT NOT NULL DEFAULT 'default',
    label TEXT NOT NULL DEFAULT '',
    index_version INTEGER NOT NULL DEFAULT 1,
    language TEXT NOT NULL DEFAULT 'english'
);
CREATE UNIQUE INDEX IF NOT EXISTS collections_by_tenant ON collections(tenant, label);
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    chunk_count INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX IF NOT EXISTS documents_by_source ON documents(collection, source);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    tenant TEXT NOT NULL DEFAULT 'default',
    collection TEXT NOT NULL,
    document_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    end_ INTEGER NOT NULL,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    heading_path TEXT NOT NULL,
    page INTEGER,
    token_count INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    UNIQUE (tenant, id)
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(collection, document_id);
CREATE TABLE IF NOT EXISTS chunk_terms (
    chunk_rowid INTEGER PRIMARY KEY REFERENCES chunks(rowid) ON DELETE CASCADE,
    terms BLOB NOT NULL,
    tfs BLOB NOT NULL,
    length INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunk_vectors (
    chunk_rowid INTEGER PRIMARY KEY REFERENCES chunks(rowid) ON DELETE CASCADE,
    vector BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS chunk_deletions (
    collection TEXT NOT NULL,
    rowid INTEGER NOT NULL,
    generation INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunk_deletions_by_generation
    ON chunk_deletions(collection, generation);
CREATE TABLE IF NOT EXISTS vocab (id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS document_principals (
    collection TEXT NOT NULL,
    document_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    PRIMARY KEY (collection, document_id, principal),
    FOREIGN KEY (collection, document_id) REFERENCES documents(collection, id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS index_builds (
    collection TEXT PRIMARY KEY REFERENCES collections(name) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    embedding_model TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    started_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS version_vectors (
    chunk_rowid INTEGER NOT NULL REFERENCES chunks(rowid) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (chunk_rowid, version)
);
"""

# v1 -> v2: SQLite cannot add AUTOINCREMENT to a table, so ``chunks`` is copied into a new one
# (rowids kept) inside one transaction, with foreign keys off so the copy cascades nothing.
_V1_TO_V2 = """
CREATE TABLE chunks_v2 (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    collection TEXT NOT NULL,
    document_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    end_ INTEGER NOT NULL,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    heading_path TEXT NOT NULL,
    page INTEGER,
    token_count INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO chunks_v2 SELECT rowid, id, collection, document_id, ordinal, text, start, end_,
    title, source, heading_path, page, token_count, metadata FROM chunks;
DROP TABLE chunks;
ALTER TABLE chunks_v2 RENAME TO chunks;
CREATE INDEX chunks_by_document ON chunks(collection, document_id);
ALTER TABLE collections ADD COLUMN uid TEXT NOT NULL DEFAULT '';
ALTER TABLE collections ADD COLUMN deletions_floor INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS chunk_deletions (
    collection TEXT NOT NULL,
    rowid INTEGER NOT NULL,
    generation INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunk_deletions_by_generation
    ON chunk_deletions(collection, generation);
"""

# v2 -> v3: chunk ids become unique per tenant, which again means copying ``chunks`` (rowids
# kept; the AUTOINCREMENT counter is carried over by ``_upgrade_v2``). Every existing row
# belongs to the default tenant, whose storage keys are the collection names: no row changes.
_V2_TO_V3 = """
CREATE TABLE chunks_v3 (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    tenant TEXT NOT NULL DEFAULT 'default',
    collection TEXT NOT NULL,
    document_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    text TEXT NOT NULL,
    start INTEGER NOT NULL,
    end_ INTEGER NOT NULL,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    heading_path TEXT NOT NULL,
    page INTEGER,
    token_count INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    UNIQUE (tenant, id)
);
INSERT INTO chunks_v3 SELECT rowid, id, 'default', collection, document_id, ordinal, text, start,
    end_, title, source, heading_path, page, token_count, metadata FROM chunks;
DROP TABLE chunks;
ALTER TABLE chunks_v3 RENAME TO chunks;
CREATE INDEX chunks_by_document ON chunks(collection, document_id);
ALTER TABLE collections ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE collections ADD COLUMN label TEXT NOT NULL DEFAULT '';
UPDATE collections SET label = name;
CREATE UNIQUE INDEX collections_by_tenant ON collections(tenant, label);
CREATE TABLE document_principals (
    collection TEXT NOT NULL,
    document_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    PRIMARY KEY (collection, document_id, principal),
    FOREIGN KEY (collection, document_id) REFERENCES documents(collection, id) ON DELETE CASCADE
);
"""

# v3 -> v4: only additions (the index version pointer, builds and their vectors)
_V3_TO_V4 = """
ALTER TABLE collections ADD COLUMN index_version INTEGER NOT NULL DEFAULT 1;
CREATE TABLE index_builds (
    collection TEXT PRIMARY KEY REFERENCES collections(name) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    embedding_model TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    started_at REAL NOT NULL
);
CREATE TABLE version_vectors (
    chunk_rowid INTEGER NOT NULL REFERENCES chunks(rowid) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (chunk_rowid, version)
);
"""

# v4 -> v5: the keyword index's language (every existing collection's postings are English)
_V4_TO_V5 = "ALTER TABLE collections ADD COLUMN language TEXT NOT NULL DEFAULT 'english'"


def new_uid() -> str:
    return uuid.uuid4().hex


def migrate(conn: sqlite3.Connection) -> None:
    """Create the schema, or bring a version-1 to -4 store to version 5 step by step (in one
    transaction); refuse anything else.

    ``conn`` is in autocommit mode (``isolation_level=None``). An up-to-date store is only read,
    so opening it never waits for a writer.
    """
    if _version(conn) == SCHEMA_VERSION:
        return
    conn.execute("PRAGMA foreign_keys = OFF")  # cannot change inside a transaction
    conn.execute("BEGIN IMMEDIATE")
    upgraded = False
    try:
        version = _version(conn)
        if version is None and _has_table(conn, "chunks"):
            version = 1  # a version-1 store whose creation was interrupted before its meta row
        if version is None:
            _run(conn, SCHEMA)
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif version not in _UPGRADES and version != SCHEMA_VERSION:
            raise StorageError(
                f"store schema version {version} is not supported (expected {SCHEMA_VERSION})",
                hint="re-create the store with a matching ragkeel version",
            )
        while version in _UPGRADES:
            version = _UPGRADES[version](conn)
            upgraded = True
        if upgraded:
            _check_foreign_keys(conn)
            conn.execute(
                "UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),)
            )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
        conn.execute("PRAGMA foreign_keys = ON")
    if upgraded:  # the copy of `chunks` went through the WAL; don't leave it to the next write
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _run(conn: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _version(conn: sqlite3.Connection) -> int | None:
    if not _has_table(conn, "meta"):
        return None
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else None


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return row.fetchone() is not None


def _upgrade_v1(conn: sqlite3.Connection) -> int:
    _run(conn, _V1_TO_V2)
    conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1')")
    for (name,) in conn.execute("SELECT name FROM collections").fetchall():
        conn.execute("UPDATE collections SET uid=? WHERE name=?", (new_uid(), name))
    return 2


def _upgrade_v2(conn: sqlite3.Connection) -> int:
    # the copy restarts the AUTOINCREMENT counter at the highest *remaining* rowid; carry the
    # old one over, or a deleted top rowid could come back and hide from refreshed segments
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='chunks'").fetchone()
    _run(conn, _V2_TO_V3)
    if row is not None:
        conn.execute("DELETE FROM sqlite_sequence WHERE name IN ('chunks', 'chunks_v3')")
        conn.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('chunks', ?)", (row[0],))
    return 3


def _upgrade_v3(conn: sqlite3.Connection) -> int:
    _run(conn, _V3_TO_V4)
    return 4


def _upgrade_v4(conn: sqlite3.Connection) -> int:
    _run(conn, _V4_TO_V5)
    return 5


_UPGRADES = {1: _upgrade_v1, 2: _upgrade_v2, 3: _upgrade_v3, 4: _upgrade_v4}


def _check_foreign_keys(conn: sqlite3.Connection) -> None:
    problems = conn.execute("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise StorageError(
            f"cannot upgrade the store to schema {SCHEMA_VERSION}: "
            f"{len(problems)} rows break foreign keys",
            hint="run `ragkeel doctor`, or re-create the store",
        )

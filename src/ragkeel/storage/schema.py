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
"""

from __future__ import annotations

import sqlite3
import uuid

from ragkeel.errors import StorageError

SCHEMA_VERSION = 2

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    embedding_model TEXT,
    dimension INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0,
    uid TEXT NOT NULL DEFAULT '',
    deletions_floor INTEGER NOT NULL DEFAULT 0
);
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
"""


def new_uid() -> str:
    return uuid.uuid4().hex


def migrate(conn: sqlite3.Connection) -> None:
    """Create the schema, or bring a version-1 store to version 2; refuse anything else.

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
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif version == 1:
            _upgrade_v1(conn)
            upgraded = True
        elif version != SCHEMA_VERSION:
            raise StorageError(
                f"store schema version {version} is not supported (expected {SCHEMA_VERSION})",
                hint="re-create the store with a matching ragkeel version",
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


def _version(conn: sqlite3.Connection) -> int | None:
    if not _has_table(conn, "meta"):
        return None
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return int(row[0]) if row else None


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return row.fetchone() is not None


def _upgrade_v1(conn: sqlite3.Connection) -> None:
    for statement in _V1_TO_V2.split(";"):
        if statement.strip():
            conn.execute(statement)
    for statement in SCHEMA.split(";"):  # the tables and indexes v1 did not have
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1')")
    for (name,) in conn.execute("SELECT name FROM collections").fetchall():
        conn.execute("UPDATE collections SET uid=? WHERE name=?", (new_uid(), name))
    problems = conn.execute("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise StorageError(
            f"cannot upgrade the store to schema {SCHEMA_VERSION}: "
            f"{len(problems)} rows break foreign keys",
            hint="run `ragkeel doctor`, or re-create the store",
        )
    conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))

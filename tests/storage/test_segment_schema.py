"""Schema version 2 (what incremental segments rely on) and the upgrade of version-1 stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ragkeel.errors import StorageError
from ragkeel.storage.filters import Filter
from ragkeel.storage.schema import SCHEMA_VERSION
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import Chunk, Document

# the schema of ragkeel's first store format, verbatim
V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    name TEXT PRIMARY KEY,
    embedding_model TEXT,
    dimension INTEGER NOT NULL DEFAULT 0,
    generation INTEGER NOT NULL DEFAULT 0
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
    rowid INTEGER PRIMARY KEY,
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
CREATE TABLE IF NOT EXISTS vocab (id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE);
"""

DIM = 4


def put(store: SqliteDocumentStore, doc_id: str, texts: list[str]) -> None:
    doc = Document(doc_id, "c", f"/{doc_id}", doc_id, "\n\n".join(texts), doc_id)
    chunks = [Chunk(f"{doc_id}-{i}", doc_id, "c", i, t, 0, len(t)) for i, t in enumerate(texts)]
    vecs = np.eye(DIM, dtype=np.float32)[[i % DIM for i in range(len(texts))]]
    store.upsert_document(doc, chunks, vecs, embedding_model="m")


def make_v1_store(path: Path, source: Path) -> None:
    """A version-1 file holding the rows of the (version-2) store at ``source``."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(V1_SCHEMA)
    conn.execute("ATTACH DATABASE ? AS src", (str(source),))
    conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    conn.execute(
        "INSERT INTO collections SELECT name, embedding_model, dimension, generation "
        "FROM src.collections"
    )
    for table in ("documents", "chunks", "chunk_terms", "chunk_vectors", "vocab"):
        conn.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")
    conn.execute("DETACH DATABASE src")
    conn.close()


def search_all(store: SqliteDocumentStore) -> list[list[tuple[str, float]]]:
    flt = Filter(collection="c")
    return [
        [(h.chunk_id, h.score) for h in store.keyword.search("apple banana cherry", 50, flt)],
        [
            (h.chunk_id, h.score)
            for h in store.vectors.search(np.eye(DIM, dtype=np.float32)[1], 50, flt)
        ],
    ]


def test_version_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    source = SqliteDocumentStore(tmp_path / "v2.db", segment_cache=False)
    put(source, "a", ["apple banana", "cherry"])
    put(source, "b", ["banana banana", "apple pie", "durian"])
    put(source, "z", ["cherry cherry apple"])
    source.delete_documents("c", ["a"])  # a gap in the rowids, as real stores have
    want = search_all(source)
    source.close()
    make_v1_store(tmp_path / "v1.db", tmp_path / "v2.db")

    store = SqliteDocumentStore(tmp_path / "v1.db", segment_cache=False)
    try:
        conn = store._conn
        assert conn.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name='chunks'").fetchone()
        assert "AUTOINCREMENT" in sql
        (uid,) = conn.execute("SELECT uid FROM collections").fetchone()
        assert len(uid) == 32
        assert store.check_integrity() == []
        assert search_all(store) == want
        # the newest rowid is not reused once deleted
        (top,) = conn.execute("SELECT max(rowid) FROM chunks").fetchone()
        store.delete_documents("c", ["z"])
        put(store, "y", ["cherry"])
        (new,) = conn.execute("SELECT rowid FROM chunks WHERE id='y-0'").fetchone()
        assert new > top
        assert [h.chunk_id for h in store.keyword.search("cherry", 5)] == ["y-0"]
    finally:
        store.close()
    reopened = SqliteDocumentStore(tmp_path / "v1.db")  # idempotent
    reopened.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    SqliteDocumentStore(tmp_path / "s.db").close()
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.close()
    with pytest.raises(StorageError, match="schema version 99"):
        SqliteDocumentStore(tmp_path / "s.db")

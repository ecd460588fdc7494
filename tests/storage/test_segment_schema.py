"""Schema versions 2 (what incremental segments rely on) and 3 (tenants and ACLs, issue 11), and
the upgrades of version-1 and version-2 stores."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from ragkeel.errors import StorageError
from ragkeel.storage.filters import Filter
from ragkeel.storage.schema import SCHEMA_VERSION
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import DEFAULT_TENANT, AccessScope, Chunk, Document

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

# the schema of version 2 (before tenants), verbatim
V2_SCHEMA = """
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

CHUNK_COLUMNS = (
    "rowid, id, collection, document_id, ordinal, text, start, end_, title, source, "
    "heading_path, page, token_count, metadata"
)
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
    conn.execute(f"INSERT INTO chunks SELECT {CHUNK_COLUMNS} FROM src.chunks")
    for table in ("documents", "chunk_terms", "chunk_vectors", "vocab"):
        conn.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")
    conn.execute("DETACH DATABASE src")
    conn.close()


def make_v2_store(path: Path, source: Path) -> None:
    """A version-2 file (before tenants) holding the rows of the store at ``source``, with its
    AUTOINCREMENT counter."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(V2_SCHEMA)
    conn.execute("ATTACH DATABASE ? AS src", (str(source),))
    conn.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    conn.execute(
        "INSERT INTO collections SELECT name, embedding_model, dimension, generation, uid, "
        "deletions_floor FROM src.collections"
    )
    conn.execute(f"INSERT INTO chunks SELECT {CHUNK_COLUMNS} FROM src.chunks")
    for table in ("documents", "chunk_terms", "chunk_vectors", "vocab", "chunk_deletions"):
        conn.execute(f"INSERT INTO {table} SELECT * FROM src.{table}")
    conn.execute("UPDATE sqlite_sequence SET seq=(SELECT seq FROM src.sqlite_sequence)")
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


def test_version_2_store_is_upgraded_to_tenants_keeping_its_data(tmp_path: Path) -> None:
    source = SqliteDocumentStore(tmp_path / "new.db", segment_cache=False)
    put(source, "a", ["apple banana", "cherry"])
    put(source, "b", ["banana banana", "apple pie", "durian"])
    put(source, "z", ["cherry cherry apple"])
    (top,) = source._conn.execute("SELECT max(rowid) FROM chunks").fetchone()
    source.delete_documents("c", ["z"])  # the top rowid is gone: the counter must remember it
    want = search_all(source)
    doc_b = source.get_document("c", "b")
    source.close()
    make_v2_store(tmp_path / "v2.db", tmp_path / "new.db")
    conn = sqlite3.connect(tmp_path / "v2.db")
    assert conn.execute("SELECT seq FROM sqlite_sequence").fetchone() == (top,)
    conn.close()

    store = SqliteDocumentStore(tmp_path / "v2.db", segment_cache=False)
    try:
        conn = store._conn
        assert conn.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
        assert conn.execute("SELECT name, tenant, label FROM collections").fetchall() == [
            ("c", DEFAULT_TENANT, "c")
        ]
        assert store.check_integrity() == []
        assert search_all(store) == want
        assert store.get_document("c", "b") == doc_b
        assert doc_b is not None and doc_b.tenant == DEFAULT_TENANT and not doc_b.principals
        put(store, "y", ["cherry"])
        (new,) = conn.execute("SELECT rowid FROM chunks WHERE id='y-0'").fetchone()
        assert new > top  # a deleted rowid is not handed out again after the copy
        # the upgraded store holds tenants: another tenant's "c"/"b" is another document
        other = AccessScope("acme", all_principals=True)
        doc = Document("b", "c", "/acme/b", "b", "quince", "h", tenant="acme")
        store.upsert_document(
            doc, [Chunk("b-0", "b", "c", 0, "quince", 0, 6)], np.eye(DIM, dtype=np.float32)[:1]
        )
        assert store.get_document("c", "b") == doc_b
        assert store.get_document("c", "b", scope=other) == doc
        assert store.keyword.search("quince", 5) == []
        assert [h.chunk_id for h in store.keyword.search("quince", 5, scope=other)] == ["b-0"]
        assert store.check_integrity() == []
    finally:
        store.close()
    SqliteDocumentStore(tmp_path / "v2.db").close()  # idempotent


def test_segment_caches_survive_the_upgrade_to_tenants(tmp_path: Path) -> None:
    (tmp_path / "new").mkdir()
    (tmp_path / "old").mkdir()
    source = SqliteDocumentStore(tmp_path / "new" / "s.db")
    for name in ("a", "b", "z"):
        put(source, name, [f"apple {name}", "cherry"])
    want = search_all(source)
    assert source.segments.events["build"] == 1  # and saved to the cache
    source.close()
    make_v2_store(tmp_path / "old" / "s.db", tmp_path / "new" / "s.db")
    shutil.copytree(tmp_path / "new" / "segments", tmp_path / "old" / "segments")
    store = SqliteDocumentStore(tmp_path / "old" / "s.db")
    try:
        assert search_all(store) == want
        assert dict(store.segments.events) == {"cache_hit": 1}  # nothing rebuilt
    finally:
        store.close()


def test_version_3_store_gains_index_versions_keeping_its_data(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path / "v3.db", segment_cache=False)
    put(store, "a", ["apple banana", "cherry"])
    put(store, "b", ["banana banana", "apple pie"])
    want = search_all(store)
    store.close()
    conn = sqlite3.connect(tmp_path / "v3.db", isolation_level=None)  # back to version 3
    conn.execute("DROP TABLE version_vectors")
    conn.execute("DROP TABLE index_builds")
    conn.execute("ALTER TABLE collections DROP COLUMN index_version")
    conn.execute("ALTER TABLE collections DROP COLUMN language")  # version 5 (issue 15)
    conn.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
    conn.close()

    store = SqliteDocumentStore(tmp_path / "v3.db", segment_cache=False)
    try:
        assert store._conn.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
        active = store.active_version("c")
        assert active is not None and (active.version, active.embedding_model) == (1, "m")
        assert search_all(store) == want and store.check_integrity() == []
        build = store.begin_version("c", "m2", DIM)
        assert build.version == 2
        assert store.collection_language("c") == "english"
    finally:
        store.close()


def test_version_4_store_gains_the_keyword_language_keeping_its_segments(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path / "v4.db")
    put(store, "a", ["apple banana", "cherry"])
    put(store, "b", ["banana banana", "apple pie"])
    want = search_all(store)
    store.close()
    conn = sqlite3.connect(tmp_path / "v4.db", isolation_level=None)  # back to version 4
    conn.execute("ALTER TABLE collections DROP COLUMN language")
    conn.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
    conn.close()

    store = SqliteDocumentStore(tmp_path / "v4.db")
    try:
        assert store._conn.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
        assert store.collection_language("c") == "english"  # what its postings are
        assert search_all(store) == want
        assert dict(store.segments.events) == {"cache_hit": 1}  # nothing rebuilt
    finally:
        store.close()

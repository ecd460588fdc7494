"""What is particular to the PostgreSQL store (issue 13) beyond the shared contract suites
(tests/storage/test_contract.py runs those on it): the HNSW path with filters and ACLs inside
the query, schema migrations from an older version, concurrent writers of one document."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ragkeel.errors import StorageError
from ragkeel.storage.filters import Filter
from ragkeel.storage.postgres import PostgresDocumentStore, schema
from ragkeel.storage.postgres.store import connect
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.testing.contracts.store import ids, make_doc, put
from ragkeel.types import AccessScope, Chunk, Document

DIM = 16


def _vectors(rng: np.random.Generator, n: int) -> npt.NDArray[np.float32]:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _fill(store: PostgresDocumentStore, docs: int = 60, per_doc: int = 5) -> None:
    rng = np.random.default_rng(7)
    for i in range(docs):
        principals = frozenset({"board"}) if i % 3 else frozenset()  # a third is public
        doc, chunks = make_doc(
            f"d{i}",
            [f"needle words {i} {j}" for j in range(per_doc)],
            tenant="acme",
            principals=principals,
            metadata={"team": "ops" if i % 10 == 0 else "dev"},
        )
        store.upsert_document(doc, chunks, _vectors(rng, per_doc), embedding_model="m")


def test_hnsw_search_with_filters_and_acl_finds_k_visible_hits(postgres_url: str) -> None:
    approx = PostgresDocumentStore(postgres_url, pool_size=2, exact_search_max_rows=0)
    exact = PostgresDocumentStore(postgres_url, pool_size=2, exact_search_max_rows=10**9)
    try:
        _fill(approx)
        query = _vectors(np.random.default_rng(1), 1)[0]
        public = AccessScope("acme", frozenset({"staff"}))
        ops = Filter(metadata={"team": "ops"})
        for scope, flt in (
            (AccessScope("acme", all_principals=True), None),
            (public, None),
            (public, ops),
            (AccessScope("acme", frozenset({"board"})), ops),
        ):
            want = exact.vectors.search(query, 10, flt, scope=scope)
            got = approx.vectors.search(query, 10, flt, scope=scope)
            assert len(got) == len(want) and len(want) > 0
            allowed = exact.get_chunks(ids(got), scope=scope)
            assert set(allowed) == set(ids(got))  # nothing the scope may not see
            assert len(set(ids(got)) & set(ids(want))) >= 8  # 16 dims, 300 rows: near exact
        one = Filter(document_ids=("d0",))  # 5 rows of 300: the walk alone would find few
        got = approx.vectors.search(query, 10, one, scope=public)
        assert sorted(ids(got)) == sorted(f"c-d0-v1-{j}" for j in range(5))
        with approx.connection() as conn:
            cid = approx.search_collections("acme", "c")[0].id
            plan = conn.execute(
                f"EXPLAIN SELECT c.pk FROM chunks c WHERE c.collection_id = {cid} "
                f"AND vector_dims(c.embedding) = {DIM} ORDER BY c.embedding::vector({DIM}) <=> %s::vector({DIM}) LIMIT 10",
                (query,),
            ).fetchall()
        assert any(f"chunks_hnsw_{cid}" in str(r[0]) for r in plan)  # the partial index is used
    finally:
        approx.close()
        exact.close()


def test_upgrade_from_schema_version_1_keeps_the_data(postgres_url: str) -> None:
    with connect(postgres_url) as conn:
        assert [m.version for m in schema.migrate(conn, target=1)] == [1]
        # what a version-1 ragkeel wrote: no collection statistics yet
        cid = conn.execute(
            "INSERT INTO collections(tenant, name, embedding_model, dimension) "
            "VALUES ('default', 'kb', 'm', 2) RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO documents(collection_id, id, source, title, text, content_hash, "
            "chunk_count, updated_at) VALUES (%s, 'd1', '/s/d1.txt', 'T', 'old zebra text', "
            "'h1', 1, 0)",
            (cid,),
        )
        conn.execute(
            "INSERT INTO chunks(collection_id, tenant, id, document_id, ordinal, text, start_, "
            "end_, title, source, token_count, length, embedding) VALUES (%s, 'default', 'k1', "
            "'d1', 0, 'old zebra text', 0, 14, 'T', '/s/d1.txt', 3, 3, '[1, 0]') RETURNING pk",
            (cid,),
        )
        pk = conn.execute("SELECT pk FROM chunks WHERE id='k1'").fetchone()[0]
        for term in ("old", "zebra", "text"):
            conn.execute("INSERT INTO postings VALUES (%s, %s, %s, 1)", (cid, term, pk))
        # a version-1 ragkeel's HNSW index: over the whole collection, no dimension predicate
        conn.execute(
            f"CREATE INDEX chunks_hnsw_{cid} ON chunks USING hnsw ((embedding::vector(2)) "
            f"vector_cosine_ops) WITH (m = 12, ef_construction = 48) WHERE collection_id = {cid}"
        )
    with pytest.raises(StorageError) as info:
        PostgresDocumentStore(postgres_url, migrate_on_start=False)
    assert "db upgrade" in (info.value.hint or "")
    with connect(postgres_url) as conn:
        assert [m.version for m in schema.migrate(conn)] == [2, 3, 4, 5, 6]
        assert schema.migrate(conn) == []  # idempotent
        assert schema.current_version(conn) == schema.SCHEMA_VERSION
        # version 4: the index the dense query's dimension predicate can use (the old one led
        # the planner to a sequential scan, ~8x slower), its build parameters kept, and
        # vectors stored inline (out-of-line, every exact comparison fetched its TOAST row)
        indexdef = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s", (f"chunks_hnsw_{cid}",)
        ).fetchone()[0]
        assert "vector_dims(embedding) = 2" in indexdef and "m='12'" in indexdef, indexdef
        storage = conn.execute(
            "SELECT attrelid::regclass::text, attstorage FROM pg_attribute "
            "WHERE attname = 'embedding' AND attrelid IN ('chunks'::regclass, "
            "'version_vectors'::regclass) ORDER BY 1"
        ).fetchall()
        assert storage == [("chunks", "p"), ("version_vectors", "p")]
    store = PostgresDocumentStore(postgres_url, migrate_on_start=False)
    try:
        assert store.check_integrity() == []  # the statistics were backfilled
        assert store.stats().chunks == 1 and store.stats().documents == 1
        hits = store.keyword.search("zebra", 5)
        assert ids(hits) == ["k1"] and hits[0].score > 0
        assert ids(store.vectors.search(np.array([1, 0], np.float32), 5)) == ["k1"]
        doc = store.get_document("kb", "d1")
        assert doc is not None and doc.text == "old zebra text"
        active = store.active_version("kb")  # version 3: the index-version pointer (issue 13)
        assert active is not None and (active.version, active.embedding_model) == (1, "m")
        assert store.collection_language("kb") == "english"  # version 6 (issue 15)
    finally:
        store.close()


def test_concurrent_writers_of_one_document_queue(postgres_url: str) -> None:
    store = PostgresDocumentStore(postgres_url, pool_size=4)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for n in range(10):
                text = f"version {worker} {n}"
                doc = Document("d", "c", "/s/d", "", text, f"h{worker}{n}")
                chunk = Chunk(f"d-{worker}-{n}", "d", "c", 0, text, 0, len(text))
                store.upsert_document(
                    doc, [chunk], np.ones((1, 4), np.float32) / 2, embedding_model="m"
                )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert store.stats().documents == 1 and store.stats().chunks == 1
        assert len(store.keyword.search("version", 10)) == 1
        assert store.check_integrity() == []
    finally:
        store.close()


def test_export_documents_reads_a_collection_back_in_batches(postgres_url: str) -> None:
    store = PostgresDocumentStore(postgres_url, pool_size=2)
    try:
        written = {}
        for i in range(5):
            doc, chunks = make_doc(f"d{i}", [f"text {i} a", f"text {i} b"], tenant="acme")
            vectors = _vectors(np.random.default_rng(i), 2)
            store.upsert_document(doc, chunks, vectors, embedding_model="m")
            written[doc.id] = (doc, chunks, vectors)
        hidden, chunks = make_doc("zz", ["secret"], tenant="acme", principals=frozenset({"x"}))
        store.upsert_document(hidden, chunks, _vectors(np.random.default_rng(9), 1))
        acme = AccessScope("acme", frozenset({"staff"}))
        exported = list(store.export_documents("c", scope=acme, batch=2))
        assert [d.id for d, _, _ in exported] == sorted(written)  # the hidden one is not seen
        for doc, chunks, vectors in exported:
            want_doc, want_chunks, want_vectors = written[doc.id]
            assert (doc, chunks) == (want_doc, want_chunks)
            np.testing.assert_allclose(vectors, want_vectors, rtol=1e-6)
        assert list(store.export_documents("nothing", scope=acme)) == []
    finally:
        store.close()


def test_bm25_scores_equal_the_sqlite_stores(postgres_url: str, tmp_path: Path) -> None:
    # the same analyzer and statistics: the same scores (SQLite sums in float32)
    texts = [
        "Rotating API keys: create the new key, then revoke the old one.",
        "The upstream provider was down; answers fell back to citations.",
        "Keys, keys and more keys: a rotation drill every Friday.",
        "Quarterly numbers for the board.",
        "An outage of the provider lasted three hours on Friday.",
    ]
    pg = PostgresDocumentStore(postgres_url, pool_size=2)
    lite = SqliteDocumentStore(tmp_path / "s.db")
    try:
        for store in (pg, lite):
            for i, text in enumerate(texts):
                put(store, *make_doc(f"d{i}", [text, f"{text} again"], collection="k"))
            assert store.delete_documents("k", ["d3"]) == 1  # statistics follow deletes
        for query in ("rotate keys", "provider outage friday", "keys keys", "citations board"):
            want = lite.keyword.search(query, 10)
            got = pg.keyword.search(query, 10)
            assert ids(got) == ids(want), query
            assert [h.score for h in got] == pytest.approx([h.score for h in want], rel=1e-5)
    finally:
        pg.close()
        lite.close()

"""Incremental segment refresh: after any sequence of writes, searching the refreshed segment
gives exactly what a segment rebuilt from the tables gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragkeel.storage.filters import Filter
from ragkeel.storage.segment_source import CompactionPolicy
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import Chunk, Document

DIM = 16
WORDS = [f"w{i}" for i in range(40)]
QUERIES = ["w0 w1", "w3 w3 w7 w20", "w39", "w5 w6 w7 w8 w9 w10", "w2 nosuchword"]


def random_document(
    rng: np.random.Generator, doc_id: str, version: int
) -> tuple[Document, list[Chunk]]:
    n = int(rng.integers(0, 5))
    texts = [
        " ".join(WORDS[w] for w in rng.zipf(1.3, size=int(rng.integers(1, 12))) % len(WORDS))
        for _ in range(n)
    ]
    bucket = int(rng.integers(0, 3))
    doc = Document(
        doc_id, "c", f"/src/{doc_id}", doc_id, "\n\n".join(texts), f"h{version}", {"bucket": bucket}
    )
    chunks = [
        Chunk(f"{doc_id}-v{version}-{i}", doc_id, "c", i, t, 0, len(t), metadata={"bucket": bucket})
        for i, t in enumerate(texts)
    ]
    return doc, chunks


def random_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True) if n else np.zeros((0, DIM), np.float32)


def results(store: SqliteDocumentStore, rng_query: np.ndarray) -> list[list[tuple[str, float]]]:
    out = []
    for flt in (Filter(collection="c"), Filter(collection="c", metadata={"bucket": 1})):
        for q in QUERIES:
            out.append([(h.chunk_id, h.score) for h in store.keyword.search(q, 1000, flt)])
        out.append([(h.chunk_id, h.score) for h in store.vectors.search(rng_query, 1000, flt)])
    return out


def assert_same(got: list[list[tuple[str, float]]], want: list[list[tuple[str, float]]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert [cid for cid, _ in g] == [cid for cid, _ in w]
        np.testing.assert_allclose([s for _, s in g], [s for _, s in w], rtol=1e-5, atol=1e-6)


POLICIES = {
    "never-compact": CompactionPolicy(delta_fraction=1e9, dead_fraction=1e9, min_rows=10**9),
    "compact-often": CompactionPolicy(delta_fraction=0.3, dead_fraction=0.2, min_rows=4),
}


@pytest.mark.parametrize("policy", sorted(POLICIES))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_segment_equals_a_rebuilt_one(tmp_path: Path, seed: int, policy: str) -> None:
    rng = np.random.default_rng(seed)
    store = SqliteDocumentStore(tmp_path / "s.db", segment_cache=False, compaction=POLICIES[policy])
    versions: dict[str, int] = {}
    saw_delta = saw_dead = 0
    try:
        for step in range(60):
            op = rng.random()
            if op < 0.65 or not versions:  # add a document or replace one
                doc_id = f"d{int(rng.integers(0, 25))}"
                versions[doc_id] = versions.get(doc_id, 0) + 1
                doc, chunks = random_document(rng, doc_id, versions[doc_id])
                store.upsert_document(
                    doc, chunks, random_vectors(rng, len(chunks)), embedding_model="m"
                )
            else:  # delete one or two documents (sometimes one that does not exist)
                gone = [f"d{int(i)}" for i in rng.integers(0, 30, size=int(rng.integers(1, 3)))]
                store.delete_documents("c", gone)
                for g in gone:
                    versions.pop(g, None)
            if rng.random() < 0.3 or step == 59:  # refresh over one or several generations
                seg = store.segment("c")
                saw_delta += seg.delta_size > 0
                saw_dead += seg.dead > 0
                fresh = SqliteDocumentStore(tmp_path / "s.db", segment_cache=False)
                try:
                    query = random_vectors(rng, 1)[0]
                    assert_same(results(store, query), results(fresh, query))
                    assert seg.live == fresh.segment("c").size
                finally:
                    fresh.close()
        assert store.segments.events["refresh"] > 0
        if policy == "never-compact":
            assert saw_delta and saw_dead  # the test exercised deltas and tombstones
            assert store.segments.events["build"] == 1
        else:
            assert store.segments.events["compact"] > 0
    finally:
        store.close()


def test_compacted_segment_has_the_arrays_of_a_rebuilt_one(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    policy = POLICIES["never-compact"]
    store = SqliteDocumentStore(tmp_path / "s.db", segment_cache=False, compaction=policy)
    try:
        for i in range(30):
            doc, chunks = random_document(rng, f"d{i % 12}", i)
            store.upsert_document(
                doc, chunks, random_vectors(rng, len(chunks)), embedding_model="m"
            )
            if i % 4 == 0:
                store.segment("c")
        store.delete_documents("c", ["d3", "d5"])
        seg = store.segment("c")
        assert seg.delta_size and seg.dead
        compact = seg.compacted().base
        fresh = SqliteDocumentStore(tmp_path / "s.db", segment_cache=False)
        rebuilt = fresh.segment("c").base
        fresh.close()
        for name in ("rowids", "id_blob", "id_offsets", "lengths", "vectors"):
            np.testing.assert_array_equal(getattr(compact, name), getattr(rebuilt, name))
        for name in ("terms", "starts", "docs", "tfs"):
            np.testing.assert_array_equal(
                getattr(compact.postings, name), getattr(rebuilt.postings, name)
            )
    finally:
        store.close()


def test_rowids_are_never_reused_after_deleting_the_newest(tmp_path: Path) -> None:
    store = SqliteDocumentStore(tmp_path / "s.db", segment_cache=False)
    try:
        vec = np.eye(DIM, dtype=np.float32)[:1]
        for name in ("a", "z"):
            doc = Document(name, "c", name, name, f"word{name}", name)
            store.upsert_document(doc, [Chunk(f"{name}-0", name, "c", 0, f"word{name}", 0, 5)], vec)
        before = store.segment("c").max_rowid
        store.delete_documents("c", ["z"])
        doc = Document("y", "c", "y", "y", "wordy", "y")
        store.upsert_document(doc, [Chunk("y-0", "y", "c", 0, "wordy", 0, 5)], vec)
        (rowid,) = store._conn.execute("SELECT rowid FROM chunks WHERE id='y-0'").fetchone()
        assert rowid > before
        assert [h.chunk_id for h in store.keyword.search("wordz wordy", 5)] == ["y-0"]
        assert store.segments.events["refresh"] == 1
    finally:
        store.close()


def test_segment_older_than_the_pruned_log_is_rebuilt(tmp_path: Path) -> None:
    from ragkeel.storage import deletion_log

    rng = np.random.default_rng(5)
    writer = SqliteDocumentStore(tmp_path / "s.db", segment_cache=False)
    reader = SqliteDocumentStore(tmp_path / "s.db", segment_cache=False)
    try:
        for i in range(6):
            doc, chunks = random_document(rng, f"d{i}", 0)
            writer.upsert_document(doc, chunks, random_vectors(rng, len(chunks)))
        stale = reader.segment("c").generation
        for i in range(6):  # replace everything: every old row is logged as deleted
            doc, chunks = random_document(rng, f"d{i}", 1)
            writer.upsert_document(doc, chunks, random_vectors(rng, len(chunks)))
        with writer._write() as db:
            deletion_log.prune(db, "c", keep=1)
        (floor,) = writer._conn.execute("SELECT deletions_floor FROM collections").fetchone()
        assert floor > stale
        query = random_vectors(rng, 1)[0]
        assert_same(results(reader, query), results(writer, query))
        assert reader.segments.events["build"] == 2 and reader.segments.events["refresh"] == 0
    finally:
        writer.close()
        reader.close()


def test_postings_concat_and_select_agree_with_a_direct_build() -> None:
    from ragkeel.storage.postings import Postings

    rng = np.random.default_rng(2)
    rows = []
    for _ in range(200):  # term ids above 2**16 take the two-digit radix path
        terms = rng.choice(2**20, size=int(rng.integers(0, 30)), replace=False).astype(np.int32)
        rows.append((terms.tobytes(), rng.integers(1, 9, len(terms)).astype(np.uint16).tobytes()))
    terms_, tfs_ = [r[0] for r in rows], [r[1] for r in rows]
    whole = Postings.from_blobs(terms_, tfs_, 0)
    parts = Postings.from_blobs(terms_[:70], tfs_[:70], 0).concat(
        Postings.from_blobs(terms_[70:], tfs_[70:], 70)
    )
    keep = rng.random(len(rows)) < 0.6
    kept = [i for i in range(len(rows)) if keep[i]]
    direct = Postings.from_blobs([terms_[i] for i in kept], [tfs_[i] for i in kept], 0)
    for got, want in ((parts, whole), (whole.select(keep), direct)):
        for name in ("terms", "starts", "docs", "tfs"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))


def test_searches_racing_writes_never_fail_and_end_consistent(tmp_path: Path) -> None:
    import threading

    rng = np.random.default_rng(21)
    store = SqliteDocumentStore(tmp_path / "s.db", compaction=POLICIES["compact-often"])
    writes = [random_document(rng, f"d{i % 9}", i) for i in range(40)]
    vectors = [random_vectors(rng, len(chunks)) for _, chunks in writes]
    errors: list[BaseException] = []
    done = threading.Event()

    def search() -> None:
        query = random_vectors(np.random.default_rng(0), 1)[0]
        while not done.is_set():
            try:
                results(store, query)
            except BaseException as exc:  # reported below
                errors.append(exc)
                return

    readers = [threading.Thread(target=search) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for (doc, chunks), vecs in zip(writes, vectors, strict=True):
            store.upsert_document(doc, chunks, vecs, embedding_model="m")
    finally:
        done.set()
        for t in readers:
            t.join()
    assert errors == []
    query = random_vectors(rng, 1)[0]
    fresh = SqliteDocumentStore(tmp_path / "s.db", segment_cache=False)
    try:
        assert_same(results(store, query), results(fresh, query))
    finally:
        fresh.close()
        store.close()

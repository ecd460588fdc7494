"""The storage contract: every backend (SQLite today, PostgreSQL later) must pass this suite.

Add a backend by adding a factory to ``BACKENDS``; the tests use only the protocols plus
``keyword``/``vectors`` attributes for the two indexes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from ragkeel.errors import FilterError, StorageError
from ragkeel.storage.filters import Filter
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import Chunk, Document

DIM = 8
BACKENDS: dict[str, Callable[[Path], SqliteDocumentStore]] = {
    "sqlite": lambda tmp: SqliteDocumentStore(tmp / "store.db"),
}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteDocumentStore]:
    s = BACKENDS[request.param](tmp_path)
    yield s
    s.close()


def unit(i: int) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[i % DIM] = 1.0
    return v


def make_doc(
    doc_id: str,
    texts: list[str],
    *,
    collection: str = "c",
    source: str | None = None,
    version: str = "v1",
    metadata: dict[str, str | int | bool] | None = None,
) -> tuple[Document, list[Chunk]]:
    text = "\n\n".join(texts)
    meta = metadata or {}
    doc = Document(
        doc_id,
        collection,
        source or f"/src/{doc_id}.txt",
        f"Title {doc_id}",
        text,
        f"hash-{doc_id}-{version}",
        meta,
    )
    chunks, pos = [], 0
    for i, t in enumerate(texts):
        chunks.append(
            Chunk(
                f"{collection}-{doc_id}-{version}-{i}",
                doc_id,
                collection,
                i,
                t,
                pos,
                pos + len(t),
                title=doc.title,
                source=doc.source,
                metadata=meta,
            )
        )
        pos += len(t) + 2
    return doc, chunks


def put(store: SqliteDocumentStore, doc: Document, chunks: list[Chunk], axis: int = 0) -> None:
    vecs = (
        np.stack([unit(axis + i) for i in range(len(chunks))])
        if chunks
        else np.zeros((0, DIM), np.float32)
    )
    store.upsert_document(doc, chunks, vecs, embedding_model="test-model")


def ids(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.chunk_id for h in hits]


def test_roundtrip_document_and_chunks(store: SqliteDocumentStore) -> None:
    doc, chunks = make_doc("d1", ["alpha beta gamma", "delta epsilon"], metadata={"lang": "en"})
    put(store, doc, chunks)
    assert store.get_document("c", "d1") == doc
    got = store.get_chunks([c.id for c in chunks])
    assert [got[c.id] for c in chunks] == chunks
    info = store.document_info("c", "d1")
    assert info is not None and info.content_hash == doc.content_hash and info.chunk_count == 2
    assert store.document_info("c", "nope") is None
    assert store.check_integrity() == []


def test_keyword_and_vector_search(store: SqliteDocumentStore) -> None:
    doc, chunks = make_doc("d1", ["rotating api keys safely", "billing and invoices"])
    put(store, doc, chunks)
    kw = store.keyword.search("how to rotate keys", 5, Filter(collection="c"))
    assert ids(kw) == [chunks[0].id]
    assert kw[0].rank == 1 and kw[0].score > 0
    dense = store.vectors.search(unit(1), 2, Filter(collection="c"))
    assert ids(dense)[0] == chunks[1].id and dense[0].score == pytest.approx(1.0)


def test_replaced_document_leaves_no_ghost_hits(store: SqliteDocumentStore) -> None:
    doc, old = make_doc("d1", ["zebra migration patterns"], version="v1")
    put(store, doc, old, axis=3)
    assert ids(store.keyword.search("zebra", 5)) == [old[0].id]
    doc2, new = make_doc("d1", ["penguin colonies"], version="v2")
    put(store, doc2, new, axis=5)
    assert store.keyword.search("zebra", 5) == []
    assert old[0].id not in ids(store.vectors.search(unit(3), 5))
    assert ids(store.keyword.search("penguin", 5)) == [new[0].id]
    assert store.get_chunks([old[0].id]) == {}
    assert store.check_integrity() == []


def test_delete_removes_from_every_index(store: SqliteDocumentStore) -> None:
    for name in ("a", "b"):
        doc, chunks = make_doc(name, [f"shared words {name}"])
        put(store, doc, chunks)
    assert store.delete_documents("c", ["a", "missing"]) == 1
    assert all("-a-" not in h for h in ids(store.keyword.search("shared words", 10)))
    assert all("-a-" not in h for h in ids(store.vectors.search(unit(0), 10)))
    assert store.get_document("c", "a") is None and store.get_document("c", "b") is not None


def test_filters_apply_inside_the_query(store: SqliteDocumentStore) -> None:
    # 30 matching chunks in "other" would crowd out k=3 if filtering happened after ranking
    for i in range(30):
        doc, chunks = make_doc(f"o{i}", ["needle needle needle"], collection="other")
        put(store, doc, chunks)
    doc, chunks = make_doc("x", ["needle once"], metadata={"team": "ops", "public": True})
    put(store, doc, chunks)
    doc2, chunks2 = make_doc(
        "y", ["needle twice needle"], metadata={"team": "dev", "public": False}
    )
    put(store, doc2, chunks2)
    assert ids(
        store.keyword.search("needle", 3, Filter(collection="c", metadata={"team": "ops"}))
    ) == [chunks[0].id]
    assert ids(store.vectors.search(unit(0), 3, Filter(metadata={"public": True}))) == [
        chunks[0].id
    ]
    both = store.keyword.search(
        "needle", 5, Filter(collection="c", metadata={"team": ["ops", "dev"]})
    )
    assert set(ids(both)) == {chunks[0].id, chunks2[0].id}
    assert ids(store.keyword.search("needle", 5, Filter(document_ids=("y",)))) == [chunks2[0].id]
    assert ids(
        store.keyword.search("needle", 5, Filter(collection="c", sources=("/src/x.txt",)))
    ) == [chunks[0].id]
    assert (
        store.keyword.search("needle", 5, Filter(collection="c", metadata={"team": "none"})) == []
    )
    with pytest.raises(FilterError):
        Filter(metadata={"bad key; drop table": 1})


def test_failed_upsert_keeps_the_previous_version(store: SqliteDocumentStore) -> None:
    doc, chunks = make_doc("d1", ["original content"])
    put(store, doc, chunks)
    doc2, chunks2 = make_doc("d1", ["new content", "more"], version="v2")
    with pytest.raises(StorageError):
        store.upsert_document(doc2, chunks2, np.zeros((1, DIM), np.float32))  # wrong count
    with pytest.raises(StorageError):  # wrong dimension for this collection
        store.upsert_document(
            doc2, chunks2, np.zeros((2, DIM + 1), np.float32), embedding_model="test-model"
        )
    with pytest.raises(StorageError):  # another embedding model
        store.upsert_document(
            doc2, chunks2, np.zeros((2, DIM), np.float32), embedding_model="other"
        )
    assert store.get_document("c", "d1") == doc
    assert ids(store.keyword.search("original", 5)) == [chunks[0].id]
    assert store.check_integrity() == []


def test_documents_by_source_and_stats(store: SqliteDocumentStore) -> None:
    put(store, *make_doc("a", ["one"], source="/x/f.jsonl"))
    put(store, *make_doc("b", ["two"], source="/x/f.jsonl"))
    put(store, *make_doc("z", ["three"], source="/x/g.md", collection="k"))
    assert sorted(store.documents_by_source("c")["/x/f.jsonl"]) == ["a", "b"]
    stats = store.stats()
    assert (stats.documents, stats.chunks) == (3, 3)
    assert stats.collections == {"c": 2, "k": 1}
    assert store.drop_collection("k") == 1 and store.stats().collections == {"c": 2}


def test_second_handle_sees_committed_writes(tmp_path: Path) -> None:
    writer = SqliteDocumentStore(tmp_path / "s.db")
    reader = SqliteDocumentStore(tmp_path / "s.db")
    try:
        put(writer, *make_doc("d1", ["first words"]))
        assert len(reader.keyword.search("first", 5)) == 1
        doc, chunks = make_doc("d1", ["second words"], version="v2")
        put(writer, doc, chunks)
        assert reader.keyword.search("first", 5) == []  # segment reloaded on generation change
        assert ids(reader.keyword.search("second", 5)) == [chunks[0].id]
    finally:
        writer.close()
        reader.close()


def test_bm25_matches_reference_formula(store: SqliteDocumentStore) -> None:
    texts = ["cat cat dog", "dog bird", "fish"]
    for i, t in enumerate(texts):
        put(store, *make_doc(f"d{i}", [t]))
    hits = {h.chunk_id: h.score for h in store.keyword.search("cat dog", 10)}
    n, k1, b = 3, 1.2, 0.75

    def idf(df: int) -> float:
        return float(np.log1p((n - df + 0.5) / (df + 0.5)))

    def w(tf: int, dl: int) -> float:
        return tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))

    # chunk text is indexed with its title ("Title dN"): "titl" and "dN" add to the length
    dl0, dl1 = 3 + 2, 2 + 2
    avgdl = (5 + 4 + 3) / 3
    expect0 = idf(1) * w(2, dl0) + idf(2) * w(1, dl0)
    expect1 = idf(2) * w(1, dl1)
    assert hits["c-d0-v1-0"] == pytest.approx(expect0, rel=1e-5)
    assert hits["c-d1-v1-0"] == pytest.approx(expect1, rel=1e-5)


def test_filter_results_follow_writes(store: SqliteDocumentStore) -> None:
    doc, chunks = make_doc("m1", ["shared needle text"], metadata={"team": "ops"})
    put(store, doc, chunks)
    flt = Filter(collection="c", metadata={"team": "ops"})
    assert ids(store.keyword.search("needle", 5, flt)) == [chunks[0].id]
    assert ids(store.keyword.search("needle", 5, flt)) == [chunks[0].id]  # repeated filter
    doc2, chunks2 = make_doc("m1", ["shared needle text"], metadata={"team": "dev"}, version="v2")
    put(store, doc2, chunks2)
    assert store.keyword.search("needle", 5, flt) == []
    assert ids(
        store.keyword.search("needle", 5, Filter(collection="c", metadata={"team": "dev"}))
    ) == [chunks2[0].id]


def test_relocate_document_keeps_rows_and_updates_source(store: SqliteDocumentStore) -> None:
    doc, chunks = make_doc("r1", ["relocated words here"], source="/old/path.txt")
    put(store, doc, chunks)
    assert store.relocate_document("c", "r1", "/new/path.txt")
    assert not store.relocate_document("c", "missing", "/x")
    assert dict(store.documents_by_source("c")) == {"/new/path.txt": ["r1"]}
    assert ids(
        store.keyword.search("relocated", 5, Filter(collection="c", sources=("/new/path.txt",)))
    ) == [chunks[0].id]
    assert (
        store.keyword.search("relocated", 5, Filter(collection="c", sources=("/old/path.txt",)))
        == []
    )
    assert store.get_chunks([chunks[0].id])[chunks[0].id].source == "/new/path.txt"

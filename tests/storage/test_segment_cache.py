"""The on-disk segment cache: a hit gives identical results, a stale cache is refreshed, and
anything wrong with it falls back to a rebuild (logged) with identical results."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ragkeel.storage.filters import Filter
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import Chunk, Document

N_DOCS, DIM = 12, 16
WORDS = [f"w{i}" for i in range(30)]


def random_document(
    rng: np.random.Generator, doc_id: str, version: int
) -> tuple[Document, list[Chunk]]:
    texts = [
        " ".join(rng.choice(WORDS, size=int(rng.integers(1, 10))))
        for _ in range(int(rng.integers(1, 5)))
    ]
    doc = Document(doc_id, "c", f"/src/{doc_id}", doc_id, "\n\n".join(texts), f"h{version}")
    return doc, [
        Chunk(f"{doc_id}-v{version}-{i}", doc_id, "c", i, t, 0, len(t)) for i, t in enumerate(texts)
    ]


def random_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def results(store: SqliteDocumentStore, query: np.ndarray) -> list[list[tuple[str, float]]]:
    flt = Filter(collection="c")
    out = [
        [(h.chunk_id, h.score) for h in store.keyword.search(q, 1000, flt)]
        for q in ("w1 w2", "w3 w3 w29", "w0 w4 w5 w6 w7")
    ]
    return [*out, [(h.chunk_id, h.score) for h in store.vectors.search(query, 1000, flt)]]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    """A store with one collection whose segment has been built and saved."""
    rng = np.random.default_rng(3)
    path = tmp_path / "store.db"
    store = SqliteDocumentStore(path)
    for i in range(N_DOCS):
        doc, chunks = random_document(rng, f"d{i}", 0)
        store.upsert_document(doc, chunks, random_vectors(rng, len(chunks)), embedding_model="m")
    store.segment("c")
    assert store.segments.events["build"] == 1
    store.close()
    yield path


def reference(path: Path) -> list[list[tuple[str, float]]]:
    store = SqliteDocumentStore(path, segment_cache=False)
    try:
        return results(store, QUERY)
    finally:
        store.close()


QUERY = random_vectors(np.random.default_rng(99), 1)[0]


def open_and_search(path: Path) -> tuple[list[list[tuple[str, float]]], dict[str, int]]:
    store = SqliteDocumentStore(path)
    try:
        return results(store, QUERY), dict(store.segments.events)
    finally:
        store.close()


def manifest_dir(path: Path) -> Path:
    (folder,) = (path.parent / "segments").iterdir()
    return folder


def test_cache_hit_gives_identical_results(db: Path) -> None:
    folder = manifest_dir(db)
    assert (folder / "manifest.json").exists()
    got, events = open_and_search(db)
    assert events == {"cache_hit": 1}
    assert got == reference(db)  # exactly: same arrays, same arithmetic


def test_stale_cache_is_refreshed(db: Path) -> None:
    rng = np.random.default_rng(4)
    writer = SqliteDocumentStore(db, segment_cache=False)
    for i in (1, 5, 20):  # replace two documents, add one
        doc, chunks = random_document(rng, f"d{i}", 1)
        writer.upsert_document(doc, chunks, random_vectors(rng, len(chunks)), embedding_model="m")
    writer.delete_documents("c", ["d7"])
    writer.close()
    got, events = open_and_search(db)
    assert events == {"cache_hit": 1, "refresh": 1}
    want = reference(db)
    for g, w in zip(got, want, strict=True):
        assert [c for c, _ in g] == [c for c, _ in w]
        np.testing.assert_allclose([s for _, s in g], [s for _, s in w], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing", "wrong-shape", "manifest"])
def test_damaged_cache_falls_back_to_a_rebuild(
    db: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder = manifest_dir(db)
    (version,) = [p for p in folder.iterdir() if p.is_dir()]
    docs = version / "docs.npy"
    if damage == "truncate":
        docs.write_bytes(docs.read_bytes()[:-7])
    elif damage == "garbage":
        docs.write_bytes(b"\x93NUMPY garbage" + bytes(range(200)))
    elif damage == "missing":
        (version / "vectors.npy").unlink()
    elif damage == "wrong-shape":
        np.save(version / "lengths.npy", np.zeros(3, np.int32))
    else:
        (folder / "manifest.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="ragkeel.storage"):
        got, events = open_and_search(db)
    assert events == {"cache_miss": 1, "build": 1}
    assert "segment cache" in caplog.text
    assert got == reference(db)
    # the rebuild replaced the damaged version
    _, events = open_and_search(db)
    assert events == {"cache_hit": 1}


def test_cache_of_another_incarnation_or_table_state_is_not_used(db: Path) -> None:
    store = SqliteDocumentStore(db, segment_cache=False)
    store.drop_collection("c")  # a store without the cache flag leaves the cache on disk
    rng = np.random.default_rng(8)
    for i in range(3):  # same name, generation restarts: only the uid tells them apart
        doc, chunks = random_document(rng, f"x{i}", 0)
        store.upsert_document(doc, chunks, random_vectors(rng, len(chunks)), embedding_model="m")
    store.close()
    got, events = open_and_search(db)
    assert events == {"cache_miss": 1, "build": 1}
    assert got == reference(db)


def test_cache_that_disagrees_with_the_table_is_not_used(db: Path) -> None:
    # rows changed behind the store's back without a generation bump (e.g. a restored file)
    conn = SqliteDocumentStore(db, segment_cache=False)
    conn._conn.execute("DELETE FROM chunks WHERE rowid = (SELECT max(rowid) FROM chunks)")
    conn.close()
    got, events = open_and_search(db)
    assert events == {"cache_miss": 1, "build": 1}
    assert got == reference(db)


def test_drop_collection_removes_its_cache(db: Path) -> None:
    store = SqliteDocumentStore(db)
    store.drop_collection("c")
    store.close()
    assert list((db.parent / "segments").iterdir()) == []


def test_unwritable_cache_directory_only_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "segments").write_text("a file where the cache directory should be")
    store = SqliteDocumentStore(tmp_path / "store.db")
    rng = np.random.default_rng(1)
    doc, chunks = random_document(rng, "d0", 0)
    store.upsert_document(doc, chunks, random_vectors(rng, len(chunks)), embedding_model="m")
    with caplog.at_level(logging.WARNING, logger="ragkeel.storage"):
        store.segment("c")
    assert "could not save the segment cache" in caplog.text
    store.close()

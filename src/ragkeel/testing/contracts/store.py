"""The storage contract: what every ``DocumentStore`` with its ``KeywordIndex`` and
``VectorIndex`` must do (SQLite today, PostgreSQL next). A backend is done when it passes.

Three suites, each a class of pytest tests typed to the Protocols in ``storage/base.py``:

* ``DocumentStoreContract`` (here) — documents and chunks round-trip; an upsert replaces a
  document atomically (a failed one keeps the previous version); deletes, relocation, listing by
  source, stats; a second handle on the same storage sees committed writes.
* ``KeywordIndexContract`` (``keyword_index.py``) — BM25 search: the order BM25 gives on a tiny
  hand-computed corpus, ranks and scores, ``k``, ties, an empty index, filters applied inside
  the search, no ghost hits from replaced or deleted documents.
* ``VectorIndexContract`` (``vector_index.py``) — cosine search over L2-normalised vectors:
  exact scores and order on hand-made vectors, ``k``, ties, an empty index, a query of the
  wrong dimension, and the same filter and no-ghost rules.

The two index Protocols only search; their documents are written through the store, which is
why every suite runs on an ``IndexedStore``: a ``DocumentStore`` whose ``keyword`` and
``vectors`` are its two indexes, with an integrity check and ``drop_collection``.

A backend subclasses each suite as ``Test...`` and overrides one fixture, ``open_store``: a
function that opens a *new handle* on one fresh, empty storage each time it is called (the
second-handle test calls it twice; the suites close every handle they open)::

    class TestSqliteStore(DocumentStoreContract):
        @pytest.fixture
        def open_store(self, tmp_path: Path) -> StoreOpener:
            return lambda: SqliteDocumentStore(tmp_path / "store.db")

This module also holds what the three suites share (``IndexedStore``, ``StoreContract`` with
its fixtures, ``make_doc``, ``put``, ``unit``, ``ids``). Needs pytest (the ``dev`` extra).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pytest

from ragkeel.errors import StorageError
from ragkeel.storage.base import DocumentStore, KeywordIndex, VectorIndex
from ragkeel.storage.filters import Filter
from ragkeel.types import Chunk, Document, ScoredChunk

DIM = 8
EMBEDDING_MODEL = "test-model"


class IndexedStore(DocumentStore, Protocol):
    """A ``DocumentStore`` with its two search indexes (as ``SqliteDocumentStore`` has)."""

    @property
    def keyword(self) -> KeywordIndex: ...

    @property
    def vectors(self) -> VectorIndex: ...

    def check_integrity(self) -> list[str]:
        """Problems found (chunks without a document, postings or vectors out of step...)."""
        ...

    def drop_collection(self, collection: str) -> int:
        """Remove a collection with everything in it; returns how many documents went."""
        ...


StoreOpener = Callable[[], IndexedStore]


def unit(i: int) -> npt.NDArray[np.float32]:
    """The ``i``-th basis vector (mod ``DIM``): chunks on one axis are each other's nearest."""
    v = np.zeros(DIM, np.float32)
    v[i % DIM] = 1.0
    return v


def make_doc(
    doc_id: str,
    texts: Sequence[str],
    *,
    collection: str = "c",
    source: str | None = None,
    version: str = "v1",
    metadata: dict[str, str | int | bool] | None = None,
) -> tuple[Document, list[Chunk]]:
    """A document of ``texts`` (one chunk each); chunk ids are ``{collection}-{doc}-{version}-{i}``."""
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


def put(store: DocumentStore, doc: Document, chunks: Sequence[Chunk], axis: int = 0) -> None:
    """Upsert with chunk ``i`` on basis vector ``axis + i``."""
    vecs = (
        np.stack([unit(axis + i) for i in range(len(chunks))])
        if chunks
        else np.zeros((0, DIM), np.float32)
    )
    store.upsert_document(doc, chunks, vecs, embedding_model=EMBEDDING_MODEL)


def ids(hits: Sequence[ScoredChunk]) -> list[str]:
    return [h.chunk_id for h in hits]


class StoreContract:
    """The fixtures the three suites share; subclasses override ``open_store``."""

    @pytest.fixture
    def open_store(self) -> StoreOpener:
        raise NotImplementedError("override open_store: open a handle on one fresh storage")

    @pytest.fixture
    def store(self, open_store: StoreOpener) -> Iterator[IndexedStore]:
        s = open_store()
        yield s
        s.close()


class DocumentStoreContract(StoreContract):
    def test_roundtrip_document_and_chunks(self, store: IndexedStore) -> None:
        doc, chunks = make_doc("d1", ["alpha beta gamma", "delta epsilon"], metadata={"lang": "en"})
        put(store, doc, chunks)
        assert store.get_document("c", "d1") == doc
        got = store.get_chunks([c.id for c in chunks])
        assert [got[c.id] for c in chunks] == chunks
        info = store.document_info("c", "d1")
        assert info is not None and info.content_hash == doc.content_hash and info.chunk_count == 2
        assert store.document_info("c", "nope") is None
        assert store.check_integrity() == []

    def test_replaced_document_leaves_no_old_chunks(self, store: IndexedStore) -> None:
        doc, old = make_doc("d1", ["zebra migration patterns"], version="v1")
        put(store, doc, old)
        doc2, new = make_doc("d1", ["penguin colonies"], version="v2")
        put(store, doc2, new)
        assert store.get_chunks([old[0].id]) == {}
        assert store.get_document("c", "d1") == doc2
        assert store.check_integrity() == []

    def test_delete_removes_the_documents(self, store: IndexedStore) -> None:
        for name in ("a", "b"):
            put(store, *make_doc(name, [f"shared words {name}"]))
        assert store.delete_documents("c", ["a", "missing"]) == 1
        assert store.get_document("c", "a") is None and store.get_document("c", "b") is not None
        assert store.get_chunks(["c-a-v1-0"]) == {}
        assert store.check_integrity() == []

    def test_failed_upsert_keeps_the_previous_version(self, store: IndexedStore) -> None:
        doc, chunks = make_doc("d1", ["original content"])
        put(store, doc, chunks)
        doc2, chunks2 = make_doc("d1", ["new content", "more"], version="v2")
        with pytest.raises(StorageError):
            store.upsert_document(doc2, chunks2, np.zeros((1, DIM), np.float32))  # wrong count
        with pytest.raises(StorageError):  # wrong dimension for this collection
            store.upsert_document(
                doc2, chunks2, np.zeros((2, DIM + 1), np.float32), embedding_model=EMBEDDING_MODEL
            )
        with pytest.raises(StorageError):  # another embedding model
            store.upsert_document(
                doc2, chunks2, np.zeros((2, DIM), np.float32), embedding_model="other"
            )
        assert store.get_document("c", "d1") == doc
        assert ids(store.keyword.search("original", 5)) == [chunks[0].id]
        assert store.check_integrity() == []

    def test_documents_by_source_and_stats(self, store: IndexedStore) -> None:
        put(store, *make_doc("a", ["one"], source="/x/f.jsonl"))
        put(store, *make_doc("b", ["two"], source="/x/f.jsonl"))
        put(store, *make_doc("z", ["three"], source="/x/g.md", collection="k"))
        assert sorted(store.documents_by_source("c")["/x/f.jsonl"]) == ["a", "b"]
        stats = store.stats()
        assert (stats.documents, stats.chunks) == (3, 3)
        assert stats.collections == {"c": 2, "k": 1}
        assert store.drop_collection("k") == 1 and store.stats().collections == {"c": 2}

    def test_relocate_document_keeps_rows_and_updates_source(self, store: IndexedStore) -> None:
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

    def test_second_handle_sees_committed_writes(self, open_store: StoreOpener) -> None:
        writer = open_store()
        reader = open_store()
        try:
            put(writer, *make_doc("d1", ["first words"]))
            assert len(reader.keyword.search("first", 5)) == 1
            doc, chunks = make_doc("d1", ["second words"], version="v2")
            put(writer, doc, chunks)
            assert reader.keyword.search("first", 5) == []  # the reader sees the new version
            assert ids(reader.keyword.search("second", 5)) == [chunks[0].id]
            assert reader.get_document("c", "d1") == doc
        finally:
            writer.close()
            reader.close()

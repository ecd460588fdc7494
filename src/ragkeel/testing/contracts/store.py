"""The storage contract: what every ``DocumentStore`` with its ``KeywordIndex`` and
``VectorIndex`` must do (SQLite and PostgreSQL). A backend is done when it passes.

Five suites, each a class of pytest tests typed to the Protocols in ``storage/base.py``:

* ``DocumentStoreContract`` (here) — documents and chunks round-trip; an upsert replaces a
  document atomically (a failed one keeps the previous version); deletes, relocation, listing by
  source, stats; a second handle on the same storage sees committed writes; a collection read
  back in batches (``iter_documents``: documents with ACL, chunks and vectors, in id order,
  within the scope) and its embedding model (issue 13).
* ``KeywordIndexContract`` (``keyword_index.py``) — BM25 search: the order BM25 gives on a tiny
  hand-computed corpus, ranks and scores, ``k``, ties, an empty index, filters applied inside
  the search, no ghost hits from replaced or deleted documents.
* ``VectorIndexContract`` (``vector_index.py``) — cosine search over L2-normalised vectors:
  exact scores and order on hand-made vectors, ``k``, ties, an empty index, a query of the
  wrong dimension, and the same filter and no-ghost rules.
* ``AccessContract`` (here) — tenants and ACLs (issue 11): the same collection and document id
  in two tenants are two documents (chunk ids may repeat across tenants); another tenant's
  documents are absent from search, get, list, delete, relocate and ACL changes; ACL principals
  and public documents; ``k`` visible hits despite many invisible better ones; an ACL change is
  seen by the next search, also from a second handle; a filter only narrows; bad names are
  refused.
* ``IndexVersionContract`` (``index_versions.py``) — a collection's vector index in versions
  (issue 13): a build beside the active version, invisible until one atomic switch.
* ``LanguageContract`` (``languages.py``) — each collection's keyword language (issue 15):
  recorded, used for its postings and for queries, mismatches refused, re-indexing.

The two index Protocols only search; their documents are written through the store, which is
why every suite runs on an ``IndexedStore`` (``storage/base.py``'s ``ManagedStore``): a
``DocumentStore`` whose ``keyword`` and ``vectors`` are its two indexes, with an integrity
check, ``drop_collection``, its catalogue of collections and its index versions.

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

import numpy as np
import numpy.typing as npt
import pytest

from ragkeel.errors import EmbeddingModelMismatchError, FilterError, NameInvalidError, StorageError
from ragkeel.storage.base import DocumentStore, ManagedStore
from ragkeel.storage.filters import Filter
from ragkeel.types import DEFAULT_TENANT, AccessScope, Chunk, Document, ScoredChunk

DIM = 8
EMBEDDING_MODEL = "test-model"


# what every suite runs on: a store with its two search indexes, its catalogue of tenants and
# collections, its index versions, an integrity check and ``drop_collection`` (both backends)
IndexedStore = ManagedStore


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
    tenant: str = DEFAULT_TENANT,
    principals: frozenset[str] = frozenset(),
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
        tenant=tenant,
        principals=principals,
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
        with pytest.raises(EmbeddingModelMismatchError) as other:  # another embedding model
            store.upsert_document(
                doc2, chunks2, np.zeros((2, DIM), np.float32), embedding_model="other"
            )
        assert other.value.code == "EMBEDDING_MODEL_MISMATCH"
        assert EMBEDDING_MODEL in str(other.value) and "other" in str(other.value)
        assert "collections reembed" in str(other.value)
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

    def test_iter_documents_reads_a_collection_back_in_batches(self, store: IndexedStore) -> None:
        written = {}
        for i in range(7):
            texts = [f"text {i} part {j}" for j in range(i % 3 + 1)]
            principals = frozenset({"hr"}) if i % 2 else frozenset()
            doc, chunks = make_doc(
                f"d{i}", texts, metadata={"n": i}, tenant=TENANT_A, principals=principals
            )
            put(store, doc, chunks, axis=i)
            written[doc.id] = (doc, chunks)
        put(store, *make_doc("other", ["elsewhere"], collection="k", tenant=TENANT_A))
        put(store, *make_doc("d0", ["another tenant"], tenant=TENANT_B))
        got = list(store.iter_documents("c", scope=A, batch_size=3))
        assert [s.document.id for s in got] == sorted(written)
        for stored in got:
            doc, chunks = written[stored.document.id]
            assert stored.document == doc and list(stored.chunks) == chunks
            assert stored.vectors.dtype == np.float32
            axis = int(doc.id[1:])
            expected = np.stack([unit(axis + i) for i in range(len(chunks))])
            np.testing.assert_array_equal(stored.vectors, expected)
        public = [s.document.id for s in store.iter_documents("c", scope=scoped())]
        assert public == ["d0", "d2", "d4", "d6"]  # the ACL applies to reads in bulk too
        assert list(store.iter_documents("missing", scope=A)) == []
        assert list(store.iter_documents("c")) == []  # nothing in the default tenant
        assert store.collection_model("c", scope=A) == (EMBEDDING_MODEL, DIM)
        assert store.collection_model("c") is None
        assert store.tenants() == [TENANT_A, TENANT_B]
        assert sorted(store.collections(scope=A)) == ["c", "k"]

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


TENANT_A, TENANT_B = "tenant-a", "tenant-b"
A = AccessScope(TENANT_A, all_principals=True)  # an operator (admin key) of tenant A
B = AccessScope(TENANT_B, all_principals=True)


def scoped(principals: set[str] | None = None, tenant: str = TENANT_A) -> AccessScope:
    return AccessScope(tenant, frozenset(principals or ()))


def seen(store: IndexedStore, query: str, scope: AccessScope, k: int = 100) -> set[str]:
    """Document ids the scope finds by keyword and by dense search (axis 0), which must agree.
    Hits are resolved by the tenant's operator, so a hit the scope should not get counts."""
    operator = AccessScope(scope.tenant, all_principals=True)
    found: list[set[str]] = []
    for hits in (
        ids(store.keyword.search(query, k, scope=scope)),
        ids(store.vectors.search(unit(0), k, scope=scope)),
    ):
        chunks = store.get_chunks(hits, scope=operator)
        assert len(chunks) == len(hits)  # no hit from another tenant
        assert store.get_chunks(hits, scope=scope).keys() == chunks.keys()
        found.append({c.document_id for c in chunks.values()})
    assert found[0] == found[1]
    return found[0]


class AccessContract(StoreContract):
    def test_same_collection_and_id_in_two_tenants_are_two_documents(
        self, store: IndexedStore
    ) -> None:
        # same collection, document id and (as ingestion makes them) chunk ids; other texts
        da, ca = make_doc("policy.md", ["alpha holiday policy"], tenant=TENANT_A)
        db, cb = make_doc("policy.md", ["bravo holiday policy"], tenant=TENANT_B)
        assert ca[0].id == cb[0].id
        put(store, da, ca)
        put(store, db, cb)
        assert store.get_document("c", "policy.md", scope=A) == da
        assert store.get_document("c", "policy.md", scope=B) == db
        assert store.get_document("c", "policy.md") is None  # nothing in the default tenant
        assert store.get_chunks([ca[0].id], scope=A)[ca[0].id].text == "alpha holiday policy"
        assert store.get_chunks([cb[0].id], scope=B)[cb[0].id].text == "bravo holiday policy"
        assert store.keyword.search("alpha", 5, scope=B) == []
        assert store.keyword.search("bravo", 5, scope=A) == []
        assert len(store.vectors.search(unit(0), 5, scope=A)) == 1
        assert dict(store.documents_by_source("c", scope=B)) == {db.source: ["policy.md"]}
        assert store.stats(scope=A).documents == 1 and store.stats().documents == 0
        info = store.document_info("c", "policy.md", scope=B)
        assert info is not None and info.content_hash == db.content_hash
        assert store.delete_documents("c", ["policy.md"], scope=B) == 1
        assert store.get_document("c", "policy.md", scope=A) == da
        assert ids(store.keyword.search("holiday", 5, scope=A)) == [ca[0].id]
        assert store.keyword.search("holiday", 5, scope=B) == []
        assert store.check_integrity() == []

    def test_another_tenants_documents_are_absent(self, store: IndexedStore) -> None:
        doc, chunks = make_doc("secret", ["canary words"], tenant=TENANT_A, principals=frozenset())
        put(store, doc, chunks)
        put(store, *make_doc("mine", ["my words"], tenant=TENANT_B))
        assert store.get_document("c", "secret", scope=B) is None
        assert store.document_info("c", "secret", scope=B) is None
        assert store.get_chunks([chunks[0].id], scope=B) == {}
        assert "secret" not in str(dict(store.documents_by_source("c", scope=B)))
        assert store.delete_documents("c", ["secret"], scope=B) == 0
        assert not store.relocate_document("c", "secret", "/elsewhere", scope=B)
        assert not store.set_principals("c", "secret", ["x"], scope=B)
        for flt in (None, Filter(collection="c"), Filter(document_ids=("secret",))):
            assert store.keyword.search("canary", 10, flt, scope=B) == []
            assert chunks[0].id not in ids(store.vectors.search(unit(0), 10, flt, scope=B))
        assert store.get_document("c", "secret", scope=A) == doc  # untouched
        assert store.drop_collection("c", scope=B) == 1
        assert store.get_document("c", "secret", scope=A) == doc
        assert ids(store.keyword.search("canary", 5, scope=A)) == [chunks[0].id]
        assert store.check_integrity() == []

    def test_acl_principals_and_public_documents(self, store: IndexedStore) -> None:
        put(store, *make_doc("pub", ["needle public"], tenant=TENANT_A))
        put(store, *make_doc("hr", ["needle hr"], tenant=TENANT_A, principals=frozenset({"hr"})))
        two = frozenset({"alice", "admins"})
        put(store, *make_doc("al", ["needle alice"], tenant=TENANT_A, principals=two))
        everything = {"pub", "hr", "al"}
        assert seen(store, "needle", scoped()) == {"pub"}
        assert seen(store, "needle", scoped({"hr"})) == {"pub", "hr"}
        assert seen(store, "needle", scoped({"admins"})) == {"pub", "al"}
        assert seen(store, "needle", scoped({"hr", "alice"})) == everything
        assert seen(store, "needle", scoped({"nobody"})) == {"pub"}
        assert seen(store, "needle", A) == everything
        assert seen(store, "needle", scoped({"hr"}, tenant=TENANT_B)) == set()
        doc = store.get_document("c", "al", scope=scoped({"alice"}))
        assert doc is not None and doc.principals == two and doc.tenant == TENANT_A
        assert store.get_document("c", "al", scope=scoped({"hr"})) is None
        assert store.document_info("c", "hr", scope=scoped()) is None
        listed = store.documents_by_source("c", scope=scoped({"hr"}))
        assert sorted(d for docs in listed.values() for d in docs) == ["hr", "pub"]
        # what a scope cannot see, it cannot change either
        assert store.delete_documents("c", ["hr", "al"], scope=scoped({"hr"})) == 1
        assert not store.relocate_document("c", "al", "/x", scope=scoped())
        assert seen(store, "needle", A) == {"pub", "al"}
        assert store.check_integrity() == []

    def test_k_visible_hits_despite_many_invisible_better_ones(self, store: IndexedStore) -> None:
        hidden = frozenset({"board"})
        for i in range(50):  # match better in both indexes, and nobody below may see them
            put(store, *make_doc(f"h{i}", ["needle needle"], tenant=TENANT_A, principals=hidden))
        for i in range(10):
            put(store, *make_doc(f"v{i}", ["needle and some more words"], tenant=TENANT_A), axis=1)
        for i in range(50):  # another tenant's exact matches: other segments, never counted
            put(store, *make_doc(f"o{i}", ["needle needle"], tenant=TENANT_B))
        vector = np.array([0.95, 0.3, 0, 0, 0, 0, 0, 0], np.float32)
        vector /= np.linalg.norm(vector)
        for scope in (scoped(), scoped({"staff"})):
            kw = store.keyword.search("needle", 10, scope=scope)
            dense = store.vectors.search(vector, 10, scope=scope)
            for hits in (kw, dense):
                assert sorted(ids(hits)) == sorted(f"c-v{i}-v1-0" for i in range(10))
                assert [h.rank for h in hits] == list(range(1, 11))
        board = scoped({"board"})
        assert all(
            h.startswith("c-h") for h in ids(store.keyword.search("needle", 10, scope=board))
        )

    def test_acl_changes_apply_to_the_next_search(self, open_store: StoreOpener) -> None:
        writer, reader = open_store(), open_store()
        try:
            doc, chunks = make_doc(
                "d", ["quarterly numbers"], tenant=TENANT_A, principals=frozenset({"alice"})
            )
            put(writer, doc, chunks)
            bob = scoped({"bob"})
            for store in (writer, reader):  # searched first, so any cache is warm
                assert store.keyword.search("quarterly", 5, scope=bob) == []
                assert store.vectors.search(unit(0), 5, scope=bob) == []
            assert writer.set_principals("c", "d", ["alice", "bob"], scope=A)
            for store in (writer, reader):
                assert ids(store.keyword.search("quarterly", 5, scope=bob)) == [chunks[0].id]
                assert ids(store.vectors.search(unit(0), 5, scope=bob)) == [chunks[0].id]
                assert store.get_chunks([chunks[0].id], scope=bob) != {}
            assert writer.set_principals("c", "d", ["alice"], scope=A)  # bob revoked
            for store in (writer, reader):
                assert store.keyword.search("quarterly", 5, scope=bob) == []
                assert store.vectors.search(unit(0), 5, scope=bob) == []
                assert store.get_document("c", "d", scope=bob) is None
            put(writer, *make_doc("d", ["quarterly numbers"], tenant=TENANT_A))  # now public
            for store in (writer, reader):
                assert ids(store.keyword.search("quarterly", 5, scope=bob)) == [chunks[0].id]
            assert writer.set_principals("c", "d", ["alice"], scope=A)
            assert reader.keyword.search("quarterly", 5, scope=bob) == []
        finally:
            writer.close()
            reader.close()

    def test_a_filter_only_narrows(self, store: IndexedStore) -> None:
        meta: dict[str, str | int | bool] = {"team": "ops", "tenant": TENANT_A}
        doc_a, chunks_a = make_doc("a", ["shared needle"], tenant=TENANT_A, metadata=meta)
        put(store, doc_a, chunks_a)
        put(store, *make_doc("s", ["shared needle"], tenant=TENANT_A, principals=frozenset({"x"})))
        doc_b, chunks_b = make_doc("b", ["shared needle"], tenant=TENANT_B, metadata=meta)
        put(store, doc_b, chunks_b)
        team = Filter(collection="c", metadata={"team": "ops"})
        assert ids(store.keyword.search("needle", 10, team, scope=B)) == [chunks_b[0].id]
        wide = Filter(document_ids=("a", "b", "s"))
        assert ids(store.keyword.search("needle", 10, wide, scope=B)) == [chunks_b[0].id]
        assert ids(store.keyword.search("needle", 10, wide, scope=scoped())) == [chunks_a[0].id]
        assert ids(store.vectors.search(unit(0), 10, wide, scope=scoped())) == [chunks_a[0].id]
        storage_like = Filter(collection=f"{TENANT_A}\x1fc")  # no collection is named so
        assert store.keyword.search("needle", 10, storage_like, scope=B) == []
        for key in ("tenant", "acl", "principals", "Tenant"):
            with pytest.raises(FilterError):
                Filter(metadata={key: TENANT_A})

    def test_bad_names_are_refused_and_nothing_is_written(self, store: IndexedStore) -> None:
        for kwargs in (
            {"tenant": ""},
            {"tenant": "a\x00b"},
            {"tenant": "a\x1fb"},
            {"collection": "c\x1fd"},
            {"principals": frozenset({"ok", "bad\nname"})},
        ):
            doc, chunks = make_doc("d", ["words"], **kwargs)
            with pytest.raises(NameInvalidError):
                put(store, doc, chunks)
        assert store.stats().documents == 0 and store.check_integrity() == []

    def test_documents_without_a_tenant_are_public_in_the_default_tenant(
        self, store: IndexedStore
    ) -> None:
        doc, chunks = make_doc("d", ["plain words"])
        put(store, doc, chunks)
        for scope in (None, AccessScope(), AccessScope(principals=frozenset({"anyone"}))):
            assert store.get_document("c", "d", scope=scope) == doc
            assert ids(store.keyword.search("plain", 5, scope=scope)) == [chunks[0].id]
        assert store.get_document("c", "d", scope=scoped()) is None

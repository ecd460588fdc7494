"""The revision contract (issue 14): ``DocumentStore.revision`` changes with every write that
can change an answer, and only then, so the answer cache (``caching/``) keyed on it never serves
an answer from before an ingest, a delete, a move, an ACL change, a re-embedding or a drop.

* each kind of write gives a new revision: upsert (new and replaced documents), delete,
  relocate, ``set_principals``, ``activate_version``, ``drop_collection`` (and a collection made
  again under the same name never repeats a revision it had);
* reads, searches, a version still being built and writes that change nothing (deleting an
  unknown document) leave it as it was;
* a second handle on the same storage reads the same revision (nothing is kept in-process);
* revisions are per tenant and per collection; ``None`` covers all the tenant's collections.
"""

from __future__ import annotations

import numpy as np

from ragkeel.testing.contracts.index_versions import NEW_DIM, NEW_MODEL, build_all
from ragkeel.testing.contracts.store import (
    IndexedStore,
    StoreContract,
    StoreOpener,
    make_doc,
    put,
    unit,
)
from ragkeel.types import AccessScope

OTHER = AccessScope(tenant="other-tenant")


def _put(
    store: IndexedStore, doc_id: str, text: str, *, collection: str = "c", version: str = "v1"
) -> None:
    doc, chunks = make_doc(doc_id, [text], collection=collection, version=version)
    put(store, doc, chunks)


class RevisionContract(StoreContract):
    def test_every_write_gives_a_new_revision(self, store: IndexedStore) -> None:
        seen = [store.revision("c")]

        def changed() -> str:
            now = store.revision("c")
            assert now not in seen, f"revision {now!r} repeats an earlier one"
            seen.append(now)
            return now

        _put(store, "d1", "alpha beta")
        changed()
        _put(store, "d1", "alpha gamma", version="v2")  # replaced
        changed()
        _put(store, "d2", "delta")
        changed()
        assert store.relocate_document("c", "d2", "/moved/d2.txt")
        changed()
        assert store.set_principals("c", "d2", ["alice"])
        changed()
        assert store.delete_documents("c", ["d2"]) == 1
        changed()
        empty = seen[0]
        assert store.drop_collection("c") == 1
        assert store.revision("c") == empty  # gone: answered as if never made
        _put(store, "d1", "alpha beta")  # the same name again: a new collection
        changed()

    def test_reads_and_no_op_writes_keep_the_revision(self, store: IndexedStore) -> None:
        _put(store, "d1", "alpha beta")
        before = store.revision("c")
        store.keyword.search("alpha", 5)
        store.vectors.search(unit(0), 5)
        store.get_document("c", "d1")
        store.stats()
        assert store.delete_documents("c", ["missing"]) == 0
        assert not store.relocate_document("c", "missing", "/x")
        assert store.revision("c") == before

    def test_a_reembedding_changes_the_revision_at_the_switch_only(
        self, store: IndexedStore
    ) -> None:
        _put(store, "d1", "alpha beta")
        before = store.revision("c")
        version = store.begin_version("c", NEW_MODEL, NEW_DIM).version
        build_all(store, "c", version)
        assert store.revision("c") == before  # a build is invisible to answers
        assert store.activate_version("c", version)
        assert store.revision("c") != before

    def test_a_second_handle_reads_the_same_revision(self, open_store: StoreOpener) -> None:
        writer, reader = open_store(), open_store()
        try:
            _put(writer, "d1", "alpha")
            assert reader.revision("c") == writer.revision("c")
            assert writer.set_principals("c", "d1", ["bob"])
            assert reader.revision("c") == writer.revision("c")
        finally:
            writer.close()
            reader.close()

    def test_revisions_are_per_collection_and_tenant(self, store: IndexedStore) -> None:
        assert store.revision(None) == store.revision("c")  # nothing yet: the same empty state
        _put(store, "d1", "alpha", collection="c")
        _put(store, "d2", "beta", collection="other")
        c, other, every = store.revision("c"), store.revision("other"), store.revision(None)
        tenant_b = store.revision(None, scope=OTHER)
        _put(store, "d3", "gamma", collection="other")
        assert store.revision("c") == c  # another collection's write
        assert store.revision("other") != other
        assert store.revision(None) != every  # a question over every collection sees it
        assert store.revision(None, scope=OTHER) == tenant_b  # another tenant does not
        doc, chunks = make_doc("d4", ["delta"], tenant=OTHER.tenant)
        store.upsert_document(doc, chunks, np.stack([unit(0)]), embedding_model="test-model")
        assert store.revision("c") == c  # the same name in another tenant is another one
        assert store.revision(None, scope=OTHER) != tenant_b

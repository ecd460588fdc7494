"""The index-version contract (issue 13): what every store's ``IndexVersions`` must do so a
collection moves to another embedding model without downtime.

* a version under construction is invisible: searches, ``collection_model`` and the stored
  vectors stay the active version's until the switch, and writes with the active model go on;
* ``pending_chunks`` lists exactly the chunks without a vector in the new version (also those
  written during the build, not those deleted), pages by ``ref``;
* ``activate_version`` refuses while anything is pending and changes nothing, unless it may
  embed the stragglers itself (``embed``, at most ``max_pending``); once complete it
  switches searches, the model, the dimension and ``iter_documents``' vectors at once, also for
  a second handle that searched before; the old vectors are gone; writes with the old model are
  then refused with ``EMBEDDING_MODEL_MISMATCH``;
* a build resumes for the same model, a build for another model replaces it, an abandoned one
  leaves the active version as it was; versions belong to their tenant.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from ragkeel.errors import EmbeddingModelMismatchError, StorageError
from ragkeel.testing.contracts.store import (
    DIM,
    EMBEDDING_MODEL,
    IndexedStore,
    StoreContract,
    StoreOpener,
    ids,
    make_doc,
    put,
    unit,
)
from ragkeel.types import AccessScope, Chunk

NEW_MODEL, NEW_DIM = "new-model", 4


def new_unit(i: int) -> npt.NDArray[np.float32]:
    v = np.zeros(NEW_DIM, np.float32)
    v[i % NEW_DIM] = 1.0
    return v


def build_all(store: IndexedStore, collection: str, version: int, *, limit: int = 2) -> int:
    """Give every pending chunk of ``version`` a vector on the new axis of its ordinal + its
    document's number (``d3`` -> 3); returns how many were stored."""
    stored, after = 0, 0
    for _ in range(1_000):
        batch = store.pending_chunks(collection, version, limit=limit, after=after)
        if not batch:
            return stored
        vectors = np.stack(
            [new_unit(int(p.chunk.document_id[1:]) + p.chunk.ordinal) for p in batch]
        )
        stored += store.put_version_vectors(collection, version, [p.ref for p in batch], vectors)
        after = batch[-1].ref
    raise AssertionError("pending_chunks never ran dry")


class IndexVersionContract(StoreContract):
    def test_a_version_is_built_alongside_and_switched_at_once(
        self, open_store: StoreOpener
    ) -> None:
        store, reader = open_store(), open_store()
        try:
            for i in range(4):
                put(store, *make_doc(f"d{i}", [f"word{i} text"]), axis=i)
            before = store.active_version("c")
            assert before is not None and before.embedding_model == EMBEDDING_MODEL
            assert ids(reader.vectors.search(unit(2), 1)) == ["c-d2-v1-0"]  # a warm reader
            build = store.begin_version("c", NEW_MODEL, NEW_DIM)
            assert build.version > before.version and store.building_version("c") == build
            assert store.begin_version("c", NEW_MODEL, NEW_DIM) == build  # resumes
            assert len(store.pending_chunks("c", build.version, limit=100)) == 4
            assert build_all(store, "c", build.version) == 4
            # complete but not switched: everything still reads the old version
            for s in (store, reader):
                assert s.collection_model("c") == (EMBEDDING_MODEL, DIM)
                assert ids(s.vectors.search(unit(2), 1)) == ["c-d2-v1-0"]
            stored = next(iter(store.iter_documents("c")))
            assert stored.vectors.shape == (1, DIM)
            assert store.activate_version("c", build.version)
            for s in (store, reader):
                assert s.collection_model("c") == (NEW_MODEL, NEW_DIM)
                assert ids(s.vectors.search(new_unit(3), 1)) == ["c-d3-v1-0"]
                assert ids(s.keyword.search("word1", 5)) == ["c-d1-v1-0"]
                with pytest.raises(StorageError):  # the old model's query no longer fits
                    s.vectors.search(unit(2), 1)
            active = store.active_version("c")
            assert active == build and store.building_version("c") is None
            for stored in store.iter_documents("c"):
                n = int(stored.document.id[1:])
                np.testing.assert_array_equal(stored.vectors, new_unit(n)[None, :])
            with pytest.raises(EmbeddingModelMismatchError):
                put(store, *make_doc("late", ["written with the old model"]))
            assert store.check_integrity() == []
        finally:
            store.close()
            reader.close()

    def test_the_switch_waits_for_chunks_written_during_the_build(
        self, store: IndexedStore
    ) -> None:
        put(store, *make_doc("d0", ["zero"]))
        put(store, *make_doc("d1", ["one", "one more"]), axis=1)
        build = store.begin_version("c", NEW_MODEL, NEW_DIM)
        build_all(store, "c", build.version)
        put(store, *make_doc("d2", ["two"]), axis=2)  # new while building (old model)
        doc, chunks = make_doc("d1", ["one again"], version="v2")  # replaced while building
        put(store, doc, chunks, axis=1)
        assert store.delete_documents("c", ["d0"]) == 1
        pending = store.pending_chunks("c", build.version, limit=10)
        assert sorted(p.chunk.id for p in pending) == ["c-d1-v2-0", "c-d2-v1-0"]
        assert pending[0].chunk == store.get_chunks([pending[0].chunk.id])[pending[0].chunk.id]
        assert not store.activate_version("c", build.version)  # two chunks still lack a vector
        assert store.collection_model("c") == (EMBEDDING_MODEL, DIM)
        assert ids(store.vectors.search(unit(2), 1)) == ["c-d2-v1-0"]
        embedded: list[str] = []

        def embed(chunks: Sequence[Chunk]) -> npt.NDArray[np.float32]:
            embedded.extend(c.id for c in chunks)
            return np.stack([new_unit(int(c.document_id[1:]) + c.ordinal) for c in chunks])

        # more stragglers than the switch may embed itself: nothing changes
        assert not store.activate_version("c", build.version, embed=embed, max_pending=1)
        assert embedded == [] and store.collection_model("c") == (EMBEDDING_MODEL, DIM)
        # the switch embeds the stragglers inside its transaction
        assert store.activate_version("c", build.version, embed=embed, max_pending=2)
        assert sorted(embedded) == ["c-d1-v2-0", "c-d2-v1-0"]
        assert ids(store.vectors.search(new_unit(1), 1)) == ["c-d1-v2-0"]
        assert store.stats().chunks == 2 and store.check_integrity() == []

    def test_vectors_for_rows_that_are_gone_are_skipped(self, store: IndexedStore) -> None:
        put(store, *make_doc("d0", ["zero"]))
        build = store.begin_version("c", NEW_MODEL, NEW_DIM)
        (pending,) = store.pending_chunks("c", build.version, limit=10)
        put(store, *make_doc("d0", ["changed"], version="v2"))  # the row is replaced
        assert store.put_version_vectors("c", build.version, [pending.ref], new_unit(0)[None]) == 0
        with pytest.raises(StorageError):  # wrong dimension for the version
            store.put_version_vectors("c", build.version, [pending.ref], unit(0)[None])
        assert [p.chunk.id for p in store.pending_chunks("c", build.version, limit=10)] == [
            "c-d0-v2-0"
        ]

    def test_another_build_or_abandoning_leaves_the_active_version(
        self, store: IndexedStore
    ) -> None:
        put(store, *make_doc("d0", ["zero"]))
        first = store.begin_version("c", NEW_MODEL, NEW_DIM)
        build_all(store, "c", first.version)
        second = store.begin_version("c", "third-model", NEW_DIM)  # replaces the first build
        assert second.version > first.version and store.building_version("c") == second
        assert not store.activate_version("c", first.version)
        assert len(store.pending_chunks("c", second.version, limit=10)) == 1
        assert store.abandon_version("c", second.version)
        assert store.building_version("c") is None
        assert not store.activate_version("c", second.version)
        assert store.collection_model("c") == (EMBEDDING_MODEL, DIM)
        assert ids(store.vectors.search(unit(0), 1)) == ["c-d0-v1-0"]
        with pytest.raises(StorageError):
            store.begin_version("missing", NEW_MODEL, NEW_DIM)

    def test_versions_belong_to_their_tenant(self, store: IndexedStore) -> None:
        a, b = AccessScope("tenant-a", all_principals=True), AccessScope("tenant-b")
        put(store, *make_doc("d0", ["zero"], tenant="tenant-a"))
        put(store, *make_doc("d0", ["zero"], tenant="tenant-b"))
        build = store.begin_version("c", NEW_MODEL, NEW_DIM, scope=a)
        assert store.building_version("c", scope=b) is None
        assert store.pending_chunks("c", build.version, limit=10, scope=b) == []
        (pending,) = store.pending_chunks("c", build.version, limit=10, scope=a)
        vectors = new_unit(0)[None]
        assert store.put_version_vectors("c", build.version, [pending.ref], vectors, scope=a)
        assert store.activate_version("c", build.version, scope=a)
        assert store.collection_model("c", scope=a) == (NEW_MODEL, NEW_DIM)
        assert store.collection_model("c", scope=b) == (EMBEDDING_MODEL, DIM)

"""The vector-index contract: what every ``VectorIndex`` (``storage/base.py``) must do — cosine
search over the L2-normalised vectors its store holds. Run it by subclassing
``VectorIndexContract`` with an ``open_store`` fixture (see ``ragkeel.testing.contracts.store``).

* Exact cosine scores (the dot product of unit vectors) and their order on hand-made vectors,
  negative similarities included: the nearest ``k`` come back whatever their sign.
* Ranks count from 1; ``k`` caps the hits and a ``k`` past the corpus returns every vector (no
  padding); equal vectors tie with equal scores in an order that does not change between calls;
  an empty index finds nothing; a query whose dimension differs from the stored vectors' is a
  ``StorageError``, not a wrong answer.
* Filters act inside the search: ``k`` hits come back even when many nearer chunks fail the
  filter.
* A replaced or deleted document leaves no hits, and the chunks left fill its places.
* With ``model``, collections indexed with another embedding model are not searched (issue 13);
  naming one of them, or searching a tenant none of whose collections is of the query's model,
  is ``EmbeddingModelMismatchError`` naming both models, never a quiet empty result (issue 15).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from ragkeel.errors import EmbeddingModelMismatchError, StorageError
from ragkeel.storage.filters import Filter
from ragkeel.testing.contracts.store import (
    DIM,
    EMBEDDING_MODEL,
    IndexedStore,
    StoreContract,
    ids,
    make_doc,
    put,
    unit,
)


def vector(*values: float) -> npt.NDArray[np.float32]:
    """``values`` padded with zeros to ``DIM`` (not normalised: pass unit vectors)."""
    v = np.zeros(DIM, np.float32)
    v[: len(values)] = values
    return v


def put_vectors(
    store: IndexedStore,
    doc_id: str,
    vectors: Sequence[npt.NDArray[np.float32]],
    metadata: dict[str, str | int | bool] | None = None,
) -> list[str]:
    """One document with a chunk per vector; returns the chunk ids in order."""
    doc, chunks = make_doc(doc_id, [f"text {i}" for i in range(len(vectors))], metadata=metadata)
    store.upsert_document(doc, chunks, np.stack(vectors), embedding_model=EMBEDDING_MODEL)
    return [c.id for c in chunks]


class VectorIndexContract(StoreContract):
    def test_nearest_vector_first_with_cosine_score(self, store: IndexedStore) -> None:
        doc, chunks = make_doc("d1", ["rotating api keys safely", "billing and invoices"])
        put(store, doc, chunks)
        dense = store.vectors.search(unit(1), 2, Filter(collection="c"))
        assert ids(dense)[0] == chunks[1].id and dense[0].score == pytest.approx(1.0)
        assert [h.rank for h in dense] == list(range(1, len(dense) + 1))

    def test_ranks_scores_and_k(self, store: IndexedStore) -> None:
        put(store, *make_doc("d1", ["a", "b", "c", "d"]), axis=0)
        vector = np.array([0.9, 0.4, 0.1, 0, 0, 0, 0, 0], np.float32)
        vector /= np.linalg.norm(vector)
        hits = store.vectors.search(vector, 3)
        assert ids(hits) == ["c-d1-v1-0", "c-d1-v1-1", "c-d1-v1-2"]
        assert [h.rank for h in hits] == [1, 2, 3]
        assert [h.score for h in hits] == pytest.approx([float(x) for x in vector[:3]], abs=1e-5)

    def test_replaced_document_leaves_no_ghost_hits(self, store: IndexedStore) -> None:
        doc, old = make_doc("d1", ["zebra migration patterns"], version="v1")
        put(store, doc, old, axis=3)
        doc2, new = make_doc("d1", ["penguin colonies"], version="v2")
        put(store, doc2, new, axis=5)
        assert old[0].id not in ids(store.vectors.search(unit(3), 5))
        assert ids(store.vectors.search(unit(5), 1)) == [new[0].id]

    def test_deleted_document_leaves_no_hits(self, store: IndexedStore) -> None:
        for name in ("a", "b"):
            put(store, *make_doc(name, [f"shared words {name}"]))
        assert store.delete_documents("c", ["a", "missing"]) == 1
        assert all("-a-" not in h for h in ids(store.vectors.search(unit(0), 10)))

    def test_filters_apply_inside_the_query(self, store: IndexedStore) -> None:
        for i in range(30):  # 30 exact matches elsewhere would crowd out k=1 if filtered late
            put(store, *make_doc(f"o{i}", ["other"], collection="other"))
        doc, chunks = make_doc("x", ["needle once"], metadata={"team": "ops", "public": True})
        put(store, doc, chunks)
        put(store, *make_doc("y", ["needle twice"], metadata={"team": "dev", "public": False}))
        assert ids(store.vectors.search(unit(0), 3, Filter(metadata={"public": True}))) == [
            chunks[0].id
        ]
        assert ids(
            store.vectors.search(unit(0), 1, Filter(collection="c", document_ids=("x",)))
        ) == [chunks[0].id]
        assert store.vectors.search(unit(0), 5, Filter(collection="nowhere")) == []

    def test_an_empty_index_finds_nothing(self, store: IndexedStore) -> None:
        assert store.vectors.search(unit(0), 10) == []
        assert store.vectors.search(unit(0), 10, Filter(collection="c")) == []

    def test_exact_cosine_order_on_hand_made_vectors(self, store: IndexedStore) -> None:
        a, b, c, d, e = put_vectors(
            store,
            "h",
            [vector(1, 0), vector(0.6, 0.8), vector(0, 1), vector(-1, 0), vector(0, 0, 1)],
        )
        hits = store.vectors.search(vector(0.8, 0.6), 10)
        # cosines with (0.8, 0.6): b 0.48 + 0.48, a 0.8, c 0.6, e 0, d -0.8
        assert ids(hits) == [b, a, c, e, d]
        assert [h.score for h in hits] == pytest.approx([0.96, 0.8, 0.6, 0.0, -0.8], abs=1e-5)
        assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
        assert store.vectors.search(vector(0.8, 0.6), 2) == hits[:2]

    def test_k_past_the_corpus_returns_every_vector(self, store: IndexedStore) -> None:
        chunk_ids = put_vectors(store, "h", [unit(i) for i in range(3)])
        hits = store.vectors.search(unit(1), 1000)
        assert sorted(ids(hits)) == sorted(chunk_ids) and ids(hits)[0] == chunk_ids[1]
        assert [h.rank for h in hits] == [1, 2, 3]

    def test_ties_score_equal_in_a_stable_order(self, store: IndexedStore) -> None:
        same = vector(0.6, 0.8)
        tied = put_vectors(store, "t", [same, same, same])
        (nearest,) = put_vectors(store, "n", [vector(0.8, 0.6)])
        hits = store.vectors.search(vector(0.8, 0.6), 10)
        assert ids(hits)[0] == nearest and sorted(ids(hits[1:])) == sorted(tied)
        assert hits[1].score == pytest.approx(hits[2].score) == pytest.approx(hits[3].score)
        assert store.vectors.search(vector(0.8, 0.6), 10) == hits  # the same order every time
        assert store.vectors.search(vector(0.8, 0.6), 3) == hits[:3]  # k cuts a tie consistently

    def test_a_query_of_another_dimension_is_an_error(self, store: IndexedStore) -> None:
        put_vectors(store, "h", [unit(0)])
        wrong = np.full(DIM + 1, 1 / np.sqrt(DIM + 1), np.float32)
        with pytest.raises(StorageError):
            store.vectors.search(wrong, 5)

    def test_a_filtered_search_still_fills_k(self, store: IndexedStore) -> None:
        # 20 exact matches outside the filter; a filter applied after ranking would return
        # none of the 5 (farther) chunks that pass it
        for i in range(20):
            put_vectors(store, f"o{i}", [unit(0)], metadata={"team": "dev"})
        cosines = (0.8, 0.7, 0.6, 0.5, 0.4)
        mine = [
            put_vectors(store, f"m{i}", [vector(x, np.sqrt(1 - x * x))], {"team": "ops"})[0]
            for i, x in enumerate(cosines)
        ]
        hits = store.vectors.search(unit(0), 3, Filter(metadata={"team": "ops"}))
        assert ids(hits) == mine[:3]  # cosines 0.8, 0.7, 0.6
        assert [h.rank for h in hits] == [1, 2, 3]

    def test_deleted_documents_give_up_their_places(self, store: IndexedStore) -> None:
        near = put_vectors(store, "near", [unit(0), vector(0.8, 0.6)])
        far = put_vectors(store, "far", [vector(0.6, 0.8), unit(1)])
        assert ids(store.vectors.search(unit(0), 2)) == near
        assert store.delete_documents("c", ["near"]) == 1
        assert ids(store.vectors.search(unit(0), 2)) == far

    def test_a_query_model_searches_only_its_collections(self, store: IndexedStore) -> None:
        put(store, *make_doc("d1", ["mine"], collection="c"))
        doc, chunks = make_doc("d2", ["theirs"], collection="k")
        store.upsert_document(doc, chunks, np.stack([unit(0)]), embedding_model="another-model")
        both = ids(store.vectors.search(unit(0), 5))
        assert sorted(both) == ["c-d1-v1-0", "k-d2-v1-0"]
        assert ids(store.vectors.search(unit(0), 5, model=EMBEDDING_MODEL)) == ["c-d1-v1-0"]
        assert ids(store.vectors.search(unit(0), 5, model="another-model")) == ["k-d2-v1-0"]
        named = Filter(collection="k")
        assert ids(store.vectors.search(unit(0), 5, named, model="another-model")) == ["k-d2-v1-0"]

    def test_a_collection_of_another_model_is_refused_at_query_time(
        self, store: IndexedStore
    ) -> None:
        put(store, *make_doc("d1", ["mine"], collection="c"))
        with pytest.raises(EmbeddingModelMismatchError) as named:
            store.vectors.search(unit(0), 5, Filter(collection="c"), model="onnx:other:abc")
        message = str(named.value)
        assert named.value.code == "EMBEDDING_MODEL_MISMATCH"
        assert EMBEDDING_MODEL in message and "onnx:other:abc" in message and "'c'" in message
        assert "ragkeel collections reembed c" in message
        with pytest.raises(EmbeddingModelMismatchError):  # every collection of another model
            store.vectors.search(unit(0), 5, model="onnx:other:abc")
        # a collection that does not exist: nothing to refuse, nothing found
        assert store.vectors.search(unit(0), 5, Filter(collection="new"), model="x") == []
        assert store.vectors.search(unit(0), 5, model=EMBEDDING_MODEL) != []

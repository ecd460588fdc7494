"""The keyword-index contract: what every ``KeywordIndex`` (``storage/base.py``) must do —
BM25 search over the chunks its store holds. Run it by subclassing ``KeywordIndexContract``
with an ``open_store`` fixture (see ``ragkeel.testing.contracts.store``).

* BM25 (``k1`` 1.2, ``b`` 0.75, idf ``ln(1 + (N - df + 0.5) / (df + 0.5))``) on a six-chunk
  corpus, checked by order, not figure: the order below holds with or without the title indexed
  with the text (the exact figures depend on the backend's analyzer and stay in the backend's
  own tests, e.g. ``tests/storage/test_contract.py`` for SQLite). More occurrences of a term
  win at equal length, a shorter chunk wins at equal occurrences, a rare term outweighs a
  common one.
* Ranks count from 1, scores are positive and descending, ``k`` caps the hits and a ``k`` past
  the corpus returns every match (no padding); equal chunks tie with equal scores in an order
  that does not change between calls; an empty index finds nothing.
* Filters (collection, metadata, sources, document ids) act inside the search: ``k`` hits come
  back even when many better-scoring chunks fail the filter.
* A replaced or deleted document leaves no hits, and the chunks left fill its places.
"""

from __future__ import annotations

import pytest

from ragkeel.errors import FilterError
from ragkeel.storage.filters import Filter
from ragkeel.testing.contracts.store import IndexedStore, StoreContract, ids, make_doc, put

# chunk -> text; the tiny corpus of the hand-computed BM25 cases (one chunk per document)
CORPUS = {
    "p0": "kiwi kiwi lime",
    "p1": "kiwi lime lime melon",
    "p2": "kiwi lime melon melon melon plum plum",
    "p3": "guava lime",
    "p4": "lime melon",
    "p5": "plum",
}


def _chunk(doc_id: str) -> str:
    return f"c-{doc_id}-v1-0"


class KeywordIndexContract(StoreContract):
    def test_finds_the_matching_chunk_with_rank_and_score(self, store: IndexedStore) -> None:
        doc, chunks = make_doc("d1", ["rotating api keys safely", "billing and invoices"])
        put(store, doc, chunks)
        kw = store.keyword.search("how to rotate keys", 5, Filter(collection="c"))
        assert ids(kw) == [chunks[0].id]
        assert kw[0].rank == 1 and kw[0].score > 0
        assert store.keyword.search("zzzunknownword", 5) == []

    def test_ranks_scores_and_k(self, store: IndexedStore) -> None:
        for i, text in enumerate(["cat cat cat dog", "cat dog", "cat bird fish", "fish only"]):
            put(store, *make_doc(f"d{i}", [text]))
        hits = store.keyword.search("cat", 2)
        assert len(hits) == 2
        assert [h.rank for h in hits] == [1, 2]
        assert hits[0].score >= hits[1].score > 0
        everything = store.keyword.search("cat", 10)
        assert len(everything) == 3 and ids(everything)[:2] == ids(hits)
        scores = [h.score for h in everything]
        assert scores == sorted(scores, reverse=True)

    def test_replaced_document_leaves_no_ghost_hits(self, store: IndexedStore) -> None:
        doc, old = make_doc("d1", ["zebra migration patterns"], version="v1")
        put(store, doc, old, axis=3)
        assert ids(store.keyword.search("zebra", 5)) == [old[0].id]
        doc2, new = make_doc("d1", ["penguin colonies"], version="v2")
        put(store, doc2, new, axis=5)
        assert store.keyword.search("zebra", 5) == []
        assert ids(store.keyword.search("penguin", 5)) == [new[0].id]
        assert store.check_integrity() == []

    def test_deleted_document_leaves_no_hits(self, store: IndexedStore) -> None:
        for name in ("a", "b"):
            put(store, *make_doc(name, [f"shared words {name}"]))
        assert store.delete_documents("c", ["a", "missing"]) == 1
        assert all("-a-" not in h for h in ids(store.keyword.search("shared words", 10)))

    def test_filters_apply_inside_the_query(self, store: IndexedStore) -> None:
        # 30 matching chunks in "other" would crowd out k=3 if filtering happened after ranking
        for i in range(30):
            put(store, *make_doc(f"o{i}", ["needle needle needle"], collection="other"))
        doc, chunks = make_doc("x", ["needle once"], metadata={"team": "ops", "public": True})
        put(store, doc, chunks)
        doc2, chunks2 = make_doc(
            "y", ["needle twice needle"], metadata={"team": "dev", "public": False}
        )
        put(store, doc2, chunks2)
        assert ids(
            store.keyword.search("needle", 3, Filter(collection="c", metadata={"team": "ops"}))
        ) == [chunks[0].id]
        both = store.keyword.search(
            "needle", 5, Filter(collection="c", metadata={"team": ["ops", "dev"]})
        )
        assert set(ids(both)) == {chunks[0].id, chunks2[0].id}
        assert ids(store.keyword.search("needle", 5, Filter(document_ids=("y",)))) == [
            chunks2[0].id
        ]
        assert ids(
            store.keyword.search("needle", 5, Filter(collection="c", sources=("/src/x.txt",)))
        ) == [chunks[0].id]
        assert (
            store.keyword.search("needle", 5, Filter(collection="c", metadata={"team": "none"}))
            == []
        )
        with pytest.raises(FilterError):
            Filter(metadata={"bad key; drop table": 1})

    def test_filter_results_follow_writes(self, store: IndexedStore) -> None:
        doc, chunks = make_doc("m1", ["shared needle text"], metadata={"team": "ops"})
        put(store, doc, chunks)
        flt = Filter(collection="c", metadata={"team": "ops"})
        assert ids(store.keyword.search("needle", 5, flt)) == [chunks[0].id]
        assert ids(store.keyword.search("needle", 5, flt)) == [chunks[0].id]  # repeated filter
        doc2, chunks2 = make_doc(
            "m1", ["shared needle text"], metadata={"team": "dev"}, version="v2"
        )
        put(store, doc2, chunks2)
        assert store.keyword.search("needle", 5, flt) == []
        assert ids(
            store.keyword.search("needle", 5, Filter(collection="c", metadata={"team": "dev"}))
        ) == [chunks2[0].id]

    def test_an_empty_index_finds_nothing(self, store: IndexedStore) -> None:
        assert store.keyword.search("anything at all", 10) == []
        assert store.keyword.search("anything", 10, Filter(collection="c")) == []

    def test_bm25_order_on_a_hand_computed_corpus(self, store: IndexedStore) -> None:
        for doc_id, text in CORPUS.items():
            put(store, *make_doc(doc_id, [text]))
        # scores for the text alone (indexing the title too shifts them, not the order)
        # "kiwi" (df 3 of 6): p0 has it twice (0.967), p1 once in 4 words (0.626), p2 once in
        # 7 (0.464)
        kiwi = store.keyword.search("kiwi", 10)
        assert ids(kiwi) == [_chunk("p0"), _chunk("p1"), _chunk("p2")]
        assert kiwi[0].score > kiwi[1].score > kiwi[2].score > 0
        # "guava" (df 1, idf 1.54) once outweighs "kiwi" (df 3, idf 0.69) twice: p3 (1.814)
        # before p0 (0.967)
        assert ids(store.keyword.search("kiwi guava", 10)) == [
            _chunk(d) for d in ("p3", "p0", "p1", "p2")
        ]
        # "lime" is in five chunks (idf 0.24): p3 has the rare "guava" too (2.098), then lime
        # twice in 4 words (p1, 0.309), once in 2 (p4, 0.284), in 3 (p0, 0.247), in 7 (p2, 0.161)
        assert ids(store.keyword.search("guava lime", 10)) == [
            _chunk(d) for d in ("p3", "p1", "p4", "p0", "p2")
        ]

    def test_k_past_the_corpus_returns_every_match(self, store: IndexedStore) -> None:
        for doc_id, text in CORPUS.items():
            put(store, *make_doc(doc_id, [text]))
        hits = store.keyword.search("melon", 1000)
        assert sorted(ids(hits)) == [_chunk(d) for d in ("p1", "p2", "p4")]
        assert [h.rank for h in hits] == [1, 2, 3]
        assert store.keyword.search("melon", 1) == hits[:1]

    def test_ties_score_equal_in_a_stable_order(self, store: IndexedStore) -> None:
        for doc_id in ("t1", "t2", "t3"):  # same text, ids of one length: the same BM25
            put(store, *make_doc(doc_id, ["quartz granite"]))
        put(store, *make_doc("t4", ["quartz quartz granite"]))
        hits = store.keyword.search("quartz", 10)
        assert ids(hits)[0] == _chunk("t4") and hits[0].score > hits[1].score
        tied = hits[1:]
        assert sorted(ids(tied)) == [_chunk(d) for d in ("t1", "t2", "t3")]
        assert tied[0].score == pytest.approx(tied[1].score) == pytest.approx(tied[2].score)
        assert [h.rank for h in hits] == [1, 2, 3, 4]
        assert store.keyword.search("quartz", 10) == hits  # the same order every time
        assert store.keyword.search("quartz", 2) == hits[:2]  # k cuts through a tie consistently

    def test_a_filtered_search_still_fills_k(self, store: IndexedStore) -> None:
        # 20 better matches outside the filter; a filter applied after ranking would return
        # none of the 5 that pass it
        for i in range(20):
            put(store, *make_doc(f"o{i}", ["needle needle needle"], metadata={"team": "dev"}))
        for i in range(5):
            put(store, *make_doc(f"m{i}", [f"needle hay{i} straw"], metadata={"team": "ops"}))
        mine = [_chunk(f"m{i}") for i in range(5)]
        hits = store.keyword.search("needle", 3, Filter(metadata={"team": "ops"}))
        assert len(hits) == 3 and set(ids(hits)) <= set(mine)
        assert [h.rank for h in hits] == [1, 2, 3]
        assert (
            sorted(ids(store.keyword.search("needle", 10, Filter(metadata={"team": "ops"}))))
            == mine
        )

    def test_deleted_documents_give_up_their_places(self, store: IndexedStore) -> None:
        for i in range(6):
            put(store, *make_doc(f"d{i}", ["needle " * (6 - i) + "hay"]))
        assert ids(store.keyword.search("needle", 2)) == [_chunk("d0"), _chunk("d1")]
        assert store.delete_documents("c", ["d0", "d1"]) == 2
        assert ids(store.keyword.search("needle", 2)) == [_chunk("d2"), _chunk("d3")]

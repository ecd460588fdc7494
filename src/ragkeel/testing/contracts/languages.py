"""The language contract (issue 15): every store records the language of each collection's
keyword index, writes postings and analyses queries in it, and can move a collection to another.
Run it by subclassing ``LanguageContract`` with an ``open_store`` fixture (``store.py``).

* A collection is created in the language of its first write (None: English) and keeps it;
  ``collection_language`` says which (None: no such collection) and ``collections()`` lists it.
* Postings and queries are analysed in the *collection's* language: German inflections meet in
  a German collection and not in an English one holding the same text; a search over several
  collections analyses the query once per language; a write without a language uses the
  collection's.
* A write in another language than an existing collection's is ``LANGUAGE_MISMATCH`` and loses
  nothing; an unknown language is ``LANGUAGE_UNSUPPORTED`` naming the supported ones.
* ``reindex_keywords`` re-analyses every chunk in another language in one step: the next search
  (also from a second handle that had searched before) uses the new analysis, the revision
  changes, the integrity check stays clean, vectors are untouched.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

from ragkeel.errors import LanguageError, LanguageMismatchError
from ragkeel.storage.filters import Filter
from ragkeel.testing.contracts.store import (
    EMBEDDING_MODEL,
    IndexedStore,
    StoreContract,
    StoreOpener,
    ids,
    make_doc,
    unit,
)
from ragkeel.types import Chunk, Document

# German text whose words meet the query's only through German stemming and normalisation:
# "Häuser" / "Haus" (plural with umlaut), "Bäume" / "Baum", and "Mädchen" written decomposed
HOUSES = "Die alten Häuser der Stadt stehen zwischen hohen Bäumen"
GIRL = unicodedata.normalize("NFD", "Das Mädchen liest ein Buch über Kometen")


def put_in(
    store: IndexedStore,
    doc: Document,
    chunks: list[Chunk],
    language: str | None,
    axis: int = 0,
) -> None:
    vecs = np.stack([unit(axis + i) for i in range(len(chunks))])
    store.upsert_document(doc, chunks, vecs, embedding_model=EMBEDDING_MODEL, language=language)


class LanguageContract(StoreContract):
    def test_a_collection_keeps_the_language_it_was_created_in(self, store: IndexedStore) -> None:
        assert store.collection_language("de") is None
        put_in(store, *make_doc("a", [HOUSES], collection="en"), None)
        put_in(store, *make_doc("b", [HOUSES], collection="de"), "German")
        assert store.collection_language("en") == "english"
        assert store.collection_language("de") == "german"
        put_in(store, *make_doc("c", ["ein Haus am See"], collection="de"), None, axis=1)
        assert store.collection_language("de") == "german"  # no language: the collection's
        listed = store.collections()
        assert listed["de"]["language"] == "german" and listed["en"]["language"] == "english"

    def test_postings_and_queries_use_the_collections_language(self, store: IndexedStore) -> None:
        en_doc, en_chunks = make_doc("h", [HOUSES], collection="en")
        de_doc, de_chunks = make_doc("h", [HOUSES, GIRL], collection="de")
        put_in(store, en_doc, en_chunks, "english")
        put_in(store, de_doc, de_chunks, "german", axis=1)
        # "Haus"/"Baum" meet "Häuser"/"Bäumen" only through the German stemmer
        assert ids(store.keyword.search("Haus Baum", 5, Filter(collection="en"))) == []
        german = store.keyword.search("Haus Baum", 5, Filter(collection="de"))
        assert ids(german) == [de_chunks[0].id]
        # the decomposed "Mädchen" is one word after NFKC, found by the composed form
        assert ids(store.keyword.search("Mädchen", 5, Filter(collection="de"))) == [de_chunks[1].id]
        # no collection named: each collection analyses the query in its own language
        assert ids(store.keyword.search("Haus", 5)) == [de_chunks[0].id]
        both = ids(store.keyword.search("Häuser", 5))
        assert sorted(both) == sorted([en_chunks[0].id, de_chunks[0].id])

    def test_german_stop_words_are_not_indexed(self, store: IndexedStore) -> None:
        doc, chunks = make_doc("s", [HOUSES], collection="de")
        put_in(store, doc, chunks, "german")
        assert store.keyword.search("der zwischen", 5, Filter(collection="de")) == []
        assert ids(store.keyword.search("Stadt", 5, Filter(collection="de"))) == [chunks[0].id]

    def test_a_write_in_another_language_is_refused_and_loses_nothing(
        self, store: IndexedStore
    ) -> None:
        doc, chunks = make_doc("a", [HOUSES], collection="de")
        put_in(store, doc, chunks, "german")
        before = store.revision("de")
        new_doc, new_chunks = make_doc("a", ["something else"], collection="de", version="v2")
        with pytest.raises(LanguageMismatchError) as err:
            put_in(store, new_doc, new_chunks, "english", axis=2)
        assert err.value.code == "LANGUAGE_MISMATCH"
        assert "german" in str(err.value) and "reindex" in str(err.value)
        assert store.revision("de") == before
        info = store.document_info("de", "a")
        assert info is not None and info.content_hash == doc.content_hash
        assert ids(store.keyword.search("Haus", 5, Filter(collection="de"))) == [chunks[0].id]
        assert store.check_integrity() == []

    def test_an_unknown_language_names_the_supported_ones(self, store: IndexedStore) -> None:
        doc, chunks = make_doc("a", ["text"], collection="x")
        with pytest.raises(LanguageError) as err:
            put_in(store, doc, chunks, "klingon")
        assert err.value.code == "LANGUAGE_UNSUPPORTED"
        assert "german" in str(err.value) and "english" in str(err.value)
        assert store.collection_language("x") is None

    def test_reindex_moves_a_collection_to_another_language(
        self, store: IndexedStore, open_store: StoreOpener
    ) -> None:
        doc, chunks = make_doc("h", [HOUSES, "Haus und Hof"], collection="c")
        put_in(store, doc, chunks, None)
        other = open_store()
        try:
            flt = Filter(collection="c")
            assert ids(other.keyword.search("Häuser", 5, flt)) == [chunks[0].id]  # segment made
            assert ids(other.keyword.search("und", 5, flt)) == [chunks[1].id]  # English: a word
            before = store.revision("c")
            assert store.reindex_keywords("c", "german") == 2
            assert store.collection_language("c") == "german"
            assert store.revision("c") != before
            for handle in (store, other):
                hits = ids(handle.keyword.search("Haus", 5, flt))
                assert sorted(hits) == sorted(c.id for c in chunks)
                assert handle.keyword.search("und", 5, flt) == []  # a German stop word now
                dense = handle.vectors.search(unit(0), 1, flt)
                assert ids(dense) == [chunks[0].id] and dense[0].score == pytest.approx(1.0)
            put_in(store, *make_doc("n", ["neue Häuser"], collection="c"), None, axis=3)
            assert store.check_integrity() == []
            assert len(store.keyword.search("Haus", 5, flt)) == 3
        finally:
            other.close()

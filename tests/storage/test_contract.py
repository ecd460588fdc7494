"""The storage contracts (``ragkeel.testing.contracts``: ``store``, ``keyword_index``,
``vector_index``, ``index_versions``, ``revisions``, ``languages``) over every backend: SQLite and PostgreSQL
(issue 13, the ``postgres_url`` fixture's server; tests/conftest.py).

Add a backend by adding one ``open_store`` fixture to ``BACKENDS`` below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.testing.contracts.index_versions import IndexVersionContract
from ragkeel.testing.contracts.keyword_index import KeywordIndexContract
from ragkeel.testing.contracts.languages import LanguageContract
from ragkeel.testing.contracts.revisions import RevisionContract
from ragkeel.testing.contracts.store import (
    AccessContract,
    DocumentStoreContract,
    IndexedStore,
    StoreOpener,
    make_doc,
    put,
)
from ragkeel.testing.contracts.vector_index import VectorIndexContract

BACKENDS = ["sqlite", "postgres"]


class Backends:
    """Runs a suite once per backend."""

    @pytest.fixture(params=BACKENDS)
    def open_store(self, request: pytest.FixtureRequest, tmp_path: Path) -> StoreOpener:
        if request.param == "sqlite":
            return lambda: SqliteDocumentStore(tmp_path / "store.db")
        if request.param == "postgres":
            from ragkeel.storage.postgres import PostgresDocumentStore

            url = request.getfixturevalue("postgres_url")
            return lambda: PostgresDocumentStore(url, pool_size=2)
        raise AssertionError(request.param)


class TestDocumentStore(Backends, DocumentStoreContract):
    pass


class TestKeywordIndex(Backends, KeywordIndexContract):
    pass


class TestVectorIndex(Backends, VectorIndexContract):
    pass


class TestAccess(Backends, AccessContract):
    pass


class TestRevisions(Backends, RevisionContract):
    pass


class TestIndexVersions(Backends, IndexVersionContract):
    pass


class TestLanguages(Backends, LanguageContract):
    pass


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[IndexedStore]:
    store = SqliteDocumentStore(tmp_path / "store.db")
    yield store
    store.close()


def test_sqlite_bm25_matches_reference_formula(sqlite_store: IndexedStore) -> None:
    # SQLite's analyzer (stemming, the title indexed with the text) makes the exact figures
    # backend-specific; the contract only asks for BM25-like ranking
    store = sqlite_store
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

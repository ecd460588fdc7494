"""The two search indexes of ``SqliteDocumentStore``: BM25 and dense, both scored on the
collection's in-memory ``Segment`` with filters resolved by SQL into a row mask.

Access (issue 11) is applied inside the search, never after ranking: only the segments of the
scope's tenant are searched (each tenant's collections are separate segments), and the ACL is
ANDed into the same row mask as the filter, so ``k`` visible hits come back whenever ``k``
visible chunks match, however many invisible ones score higher.

Languages (issue 15): the keyword query is analysed in the language of each collection it
searches (``storage/analyzer.py``), once per language, so collections of several languages can
be searched together, each with terms of its own analysis.

The indexes read the store through one narrow protocol, ``SegmentReader`` (a tenant's
collections, a collection's current segment and language, the vocabulary ids of query terms,
the row mask of a filter and a scope), which
``SqliteDocumentStore`` implements; they do not import the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ragkeel.storage.analyzer import analyzer_for
from ragkeel.storage.filters import Filter
from ragkeel.storage.segment import Segment
from ragkeel.storage.tenancy import scope_or_default
from ragkeel.types import AccessScope, ScoredChunk

F32 = npt.NDArray[np.float32]
# (storage key, its segment, the row mask) -> (row, score) pairs
ScoreFn = Callable[[str, Segment, "npt.NDArray[np.bool_] | None"], list[tuple[int, float]]]


class SegmentReader(Protocol):
    """What the indexes need from the store that owns the segments."""

    def search_keys(
        self, tenant: str, collection: str | None, model: str | None = None
    ) -> list[str]:
        """Storage keys of the tenant's collections (only ``collection`` when given; only
        those indexed with ``model`` when given)."""
        ...

    def segment(self, collection: str) -> Segment:
        """The search segment of the collection stored under this key, at its current
        generation."""
        ...

    def key_language(self, key: str) -> str:
        """The language of the keyword index of the collection stored under this key."""
        ...

    def known_term_ids(self, terms: Sequence[str]) -> list[int]:
        """Vocabulary ids of ``terms`` (in order, repeats kept), skipping unknown terms."""
        ...

    def visible_mask(
        self, key: str, seg: Segment, flt: Filter | None, scope: AccessScope
    ) -> npt.NDArray[np.bool_] | None:
        """The rows of ``seg`` that pass ``flt`` and ``scope``'s ACL (None: all of them)."""
        ...


class _SegmentSearch:
    def __init__(self, store: SegmentReader) -> None:
        self._store = store

    def _run(
        self,
        flt: Filter | None,
        scope: AccessScope | None,
        k: int,
        score: ScoreFn,
        model: str | None = None,
    ) -> list[ScoredChunk]:
        access = scope_or_default(scope)
        collection = flt.collection if flt is not None else None
        results: list[tuple[float, str]] = []
        for key in self._store.search_keys(access.tenant, collection, model):
            seg = self._store.segment(key)
            mask = self._store.visible_mask(key, seg, flt, access)
            results.extend((s, seg.chunk_id(p)) for p, s in score(key, seg, mask))
        results.sort(key=lambda r: -r[0])
        return [ScoredChunk(cid, s, i + 1) for i, (s, cid) in enumerate(results[:k])]


class SqliteKeywordIndex(_SegmentSearch):
    def search(
        self,
        query: str,
        k: int,
        flt: Filter | None = None,
        *,
        scope: AccessScope | None = None,
    ) -> list[ScoredChunk]:
        by_language: dict[str, list[int]] = {}

        def score(
            key: str, seg: Segment, mask: npt.NDArray[np.bool_] | None
        ) -> list[tuple[int, float]]:
            language = self._store.key_language(key)
            if language not in by_language:
                terms = analyzer_for(language).analyze(query)
                by_language[language] = self._store.known_term_ids(terms)
            return seg.bm25(by_language[language], k, mask)

        return self._run(flt, scope, k, score)


class SqliteVectorIndex(_SegmentSearch):
    def search(
        self,
        vector: F32,
        k: int,
        flt: Filter | None = None,
        *,
        scope: AccessScope | None = None,
        model: str | None = None,
    ) -> list[ScoredChunk]:
        query = np.asarray(vector, dtype=np.float32)
        return self._run(flt, scope, k, lambda _, seg, mask: seg.dense(query, k, mask), model)

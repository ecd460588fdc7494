"""The two search indexes of ``SqliteDocumentStore``: BM25 and dense, both scored on the
collection's in-memory ``Segment`` with filters resolved by SQL into a row mask.

The indexes read the store through one narrow protocol, ``SegmentReader`` (the collections, a
collection's current segment, the vocabulary ids of query terms, a filter's row mask), which
``SqliteDocumentStore`` implements; they do not import the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ragkeel.storage.analyzer import analyze
from ragkeel.storage.filters import Filter
from ragkeel.storage.segment import Segment
from ragkeel.types import ScoredChunk

F32 = npt.NDArray[np.float32]
ScoreFn = Callable[[Segment, "npt.NDArray[np.bool_] | None"], list[tuple[int, float]]]


class SegmentReader(Protocol):
    """What the indexes need from the store that owns the segments."""

    def collections(self) -> Iterable[str]:
        """The collection names (a mapping keyed by name will do)."""
        ...

    def segment(self, collection: str) -> Segment:
        """The collection's search segment at its current generation."""
        ...

    def known_term_ids(self, terms: Sequence[str]) -> list[int]:
        """Vocabulary ids of ``terms`` (in order, repeats kept), skipping unknown terms."""
        ...

    def filter_mask(self, collection: str, seg: Segment, flt: Filter) -> npt.NDArray[np.bool_]:
        """The rows of ``seg`` that pass ``flt`` (resolved by SQL)."""
        ...


def _needs_sql(flt: Filter | None) -> bool:
    return flt is not None and bool(flt.sources or flt.document_ids or flt.metadata)


def _scope(store: SegmentReader, flt: Filter | None) -> list[str]:
    if flt is not None and flt.collection is not None:
        return [flt.collection]
    return list(store.collections())


class _SegmentSearch:
    def __init__(self, store: SegmentReader) -> None:
        self._store = store

    def _run(self, flt: Filter | None, k: int, score: ScoreFn) -> list[ScoredChunk]:
        results: list[tuple[float, str]] = []
        for collection in _scope(self._store, flt):
            seg = self._store.segment(collection)
            mask = (
                self._store.filter_mask(collection, seg, flt)
                if flt is not None and _needs_sql(flt)
                else None
            )
            results.extend((s, seg.chunk_id(p)) for p, s in score(seg, mask))
        results.sort(key=lambda r: -r[0])
        return [ScoredChunk(cid, s, i + 1) for i, (s, cid) in enumerate(results[:k])]


class SqliteKeywordIndex(_SegmentSearch):
    def search(self, query: str, k: int, flt: Filter | None = None) -> list[ScoredChunk]:
        term_ids = self._store.known_term_ids(analyze(query))
        return self._run(flt, k, lambda seg, mask: seg.bm25(term_ids, k, mask))


class SqliteVectorIndex(_SegmentSearch):
    def search(self, vector: F32, k: int, flt: Filter | None = None) -> list[ScoredChunk]:
        query = np.asarray(vector, dtype=np.float32)
        return self._run(flt, k, lambda seg, mask: seg.dense(query, k, mask))

"""The two search indexes of ``SqliteDocumentStore``: BM25 and dense, both scored on the
collection's in-memory ``Segment`` with filters resolved by SQL into a row mask."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ragkeel.storage.analyzer import analyze
from ragkeel.storage.filters import Filter
from ragkeel.storage.segment import Segment
from ragkeel.types import ScoredChunk

if TYPE_CHECKING:
    from ragkeel.storage.sqlite import SqliteDocumentStore

F32 = npt.NDArray[np.float32]
ScoreFn = Callable[[Segment, "npt.NDArray[np.bool_] | None"], list[tuple[int, float]]]


def _needs_sql(flt: Filter | None) -> bool:
    return flt is not None and bool(flt.sources or flt.document_ids or flt.metadata)


def _scope(store: SqliteDocumentStore, flt: Filter | None) -> list[str]:
    if flt is not None and flt.collection is not None:
        return [flt.collection]
    return list(store.collections())


class _SegmentSearch:
    def __init__(self, store: SqliteDocumentStore) -> None:
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

"""``HybridRetriever``: keyword ‖ dense search run concurrently, fused, with confidence signals.

``search`` takes the caller's ``AccessScope`` (None: the default tenant with every principal,
what the CLI and auth-off use) and hands it to both halves, which apply it inside the search,
and to the chunk lookup, so a hit the scope may not see never reaches a result.

The dense half searches only collections indexed with the embedder's model (``model=``); a
collection of another model is refused with ``EMBEDDING_MODEL_MISMATCH`` rather than searched
by keywords alone without a word (issue 15, ``storage/query_models.py``): after ``ragkeel
collections reembed`` switched a collection (issue 13, ``ingestion/reembed.py``), a process
still on the old model refuses its dense searches until it restarts with the new embedding
settings. ``bm25`` searches need no embedder and are never refused.

With a ``reranker`` (``retrieval.rerank``, issue 15) the fused ranking's confidence decides
whether its first ``candidates`` hits go to the reranker (``rerank.py``); the result's
``confidence`` stays the fused ranking's, ``rerank`` says what happened, and the call's time is
the ``rerank_ms`` timing.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal

from ragkeel.embeddings.base import Embedder, Vector
from ragkeel.errors import QueryError
from ragkeel.observability import names
from ragkeel.retrieval.confidence import confidence_of
from ragkeel.retrieval.fusion import Fuser, get_fuser, ranked
from ragkeel.retrieval.rerank import ConditionalReranker
from ragkeel.storage.base import DocumentStore, KeywordIndex, VectorIndex
from ragkeel.storage.filters import Filter
from ragkeel.types import (
    AccessScope,
    Confidence,
    RerankOutcome,
    ScoredChunk,
    SearchHit,
    SearchResult,
)

Mode = Literal["bm25", "dense", "hybrid"]
MODES: tuple[Mode, ...] = ("bm25", "dense", "hybrid")
_KEY = names.SEARCH_TIMINGS  # stage -> SearchResult.timings_ms key


class HybridRetriever:
    def __init__(
        self,
        store: DocumentStore,
        keyword: KeywordIndex,
        vectors: VectorIndex,
        embedder: Embedder,
        *,
        fusion: str = "weighted",
        rrf_k: int = 60,
        keyword_weight: float = 0.5,
        dense_weight: float = 0.5,
        candidates: int = 100,
        reranker: ConditionalReranker | None = None,
    ) -> None:
        self.store = store
        self.keyword = keyword
        self.vectors = vectors
        self.embedder = embedder
        self.fuser: Fuser = get_fuser(fusion, rrf_k=rrf_k)
        self.fusion = fusion
        self.weights = (keyword_weight, dense_weight)
        self.candidates = candidates
        self.reranker = reranker
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ragkeel-retrieval")

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: Mode = "hybrid",
        flt: Filter | None = None,
        scope: AccessScope | None = None,
        vector: Vector | None = None,
    ) -> SearchResult:
        """The top ``k`` hits for ``query`` that ``scope`` may see. ``vector``: the query's
        embedding when the caller has it already (the answer cache's semantic lookup embeds
        the question first, issue 14), so the embedder is not asked twice."""
        if not query.strip():
            raise QueryError("the query is empty", hint="pass some text to search for")
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
        timings: dict[str, float] = {}
        started = time.perf_counter()
        n = max(k, self.candidates) if mode == "hybrid" else k
        kw_future = (
            self._pool.submit(self._keyword, query, n, flt, scope, timings)
            if mode != "dense"
            else None
        )
        dense_hits = self._dense(query, n, flt, scope, timings, vector) if mode != "bm25" else []
        kw_hits = _result(kw_future)
        if mode == "bm25":
            order = [(h.chunk_id, h.score) for h in kw_hits]
        elif mode == "dense":
            order = [(h.chunk_id, h.score) for h in dense_hits]
        else:
            t0 = time.perf_counter()
            order = ranked(self.fuser([kw_hits, dense_hits], self.weights))
            timings[_KEY[names.STAGE_FUSE]] = (time.perf_counter() - t0) * 1000
        found = _Found(kw_hits, dense_hits)
        hits = self._hits(order[:k], found, scope)
        confidence = confidence_of(hits, kw_hits, dense_hits)
        rerank = None
        if self.reranker is not None:
            pool = _Pool(order, k, found)
            hits, rerank = self._rerank(query, pool, hits, confidence, scope, timings)
        timings[_KEY[names.STAGE_TOTAL]] = (time.perf_counter() - started) * 1000
        return SearchResult(query, mode, hits[:k], confidence, timings, rerank)

    def _hits(
        self, top: list[tuple[str, float]], found: _Found, scope: AccessScope | None
    ) -> tuple[SearchHit, ...]:
        """The hits of ``top`` (fused ids and scores) that ``scope`` may see, in that order."""
        chunks = self.store.get_chunks([cid for cid, _ in top], scope=scope)
        kw, dn = found.keyword, found.dense
        return tuple(
            SearchHit(
                chunk=chunks[cid],
                score=score,
                keyword_rank=kw[cid].rank if cid in kw else None,
                keyword_score=kw[cid].score if cid in kw else None,
                dense_rank=dn[cid].rank if cid in dn else None,
                dense_score=dn[cid].score if cid in dn else None,
            )
            for cid, score in top
            if cid in chunks
        )

    def _rerank(
        self,
        query: str,
        pool: _Pool,
        hits: tuple[SearchHit, ...],
        confidence: Confidence,
        scope: AccessScope | None,
        timings: dict[str, float],
    ) -> tuple[tuple[SearchHit, ...], RerankOutcome]:
        """The conditional reranking (``rerank.py``): decided on the fused signals, so a
        skipped search fetches no more chunks than ``k``."""
        assert self.reranker is not None
        apply, reason = self.reranker.gate.decide(confidence, len(pool.order))
        if not apply:
            return hits, self.reranker.skipped(reason, confidence)
        t0 = time.perf_counter()
        more = pool.order[pool.k : self.reranker.candidates]
        candidates = hits + self._hits(more, pool.found, scope) if more else hits
        reranked, outcome = self.reranker.rerank(query, candidates, reason, confidence)
        timings[_KEY[names.STAGE_RERANK]] = (time.perf_counter() - t0) * 1000
        return reranked, outcome

    def _keyword(
        self,
        query: str,
        n: int,
        flt: Filter | None,
        scope: AccessScope | None,
        timings: dict[str, float],
    ) -> list[ScoredChunk]:
        t0 = time.perf_counter()
        hits = self.keyword.search(query, n, flt, scope=scope)
        timings[_KEY[names.STAGE_KEYWORD]] = (time.perf_counter() - t0) * 1000
        return hits

    def _dense(
        self,
        query: str,
        n: int,
        flt: Filter | None,
        scope: AccessScope | None,
        timings: dict[str, float],
        vector: Vector | None = None,
    ) -> list[ScoredChunk]:
        t0 = time.perf_counter()
        if vector is None:
            vector = self.embedder.embed_query(query)
        t1 = time.perf_counter()
        hits = self.vectors.search(vector, n, flt, scope=scope, model=self.embedder.name)
        timings[_KEY[names.STAGE_EMBED]] = (t1 - t0) * 1000
        timings[_KEY[names.STAGE_DENSE]] = (time.perf_counter() - t1) * 1000
        return hits

    def close(self) -> None:
        self._pool.shutdown(wait=False)


class _Pool:
    """The fused ranking a search cut its first ``k`` hits from, and what each retriever found."""

    __slots__ = ("found", "k", "order")

    def __init__(self, order: list[tuple[str, float]], k: int, found: _Found) -> None:
        self.order, self.k, self.found = order, k, found


class _Found:
    """Each retriever's hits by chunk id (the ranks and scores a ``SearchHit`` carries)."""

    __slots__ = ("dense", "keyword")

    def __init__(self, keyword: list[ScoredChunk], dense: list[ScoredChunk]) -> None:
        self.keyword = {h.chunk_id: h for h in keyword}
        self.dense = {h.chunk_id: h for h in dense}


def _result(future: Future[list[ScoredChunk]] | None) -> list[ScoredChunk]:
    return future.result() if future is not None else []

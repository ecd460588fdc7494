"""``HybridRetriever`` over small in-memory fakes of the storage Protocols: a keyword index that
scores by shared words, a vector index over fixed vectors, and a chunk lookup. Each fake records
what it was asked, so the tests see what the retriever sends down and how it fuses."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest

from ragkeel.errors import QueryError
from ragkeel.retrieval.fusion import ranked, rrf
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.filters import Filter
from ragkeel.tokens import RegexTokenCounter, TokenCounter
from ragkeel.types import AccessScope, Chunk, ScoredChunk

DIM = 4


def unit(*xs: float) -> npt.NDArray[np.float32]:
    v = np.array(xs, np.float32)
    return v / np.linalg.norm(v)


TEXTS = {
    "c1": "rotate production api keys every ninety days",
    "c2": "billing invoices are sent monthly",
    "c3": "api keys live in the vault",
    "c4": "the weather in paris is mild",
}
VECTORS = {
    "c1": unit(1, 0, 0, 0),
    "c2": unit(0, 1, 0, 0),
    "c3": unit(0.6, 0, 0.8, 0),
    "c4": unit(0, 0, 0, 1),
}
# every query embeds to this: c1 nearest, then c3, then c2 and c4 (orthogonal)
QUERY_VECTOR = unit(0.9, 0.1, 0.3, 0)


@dataclass
class Asked:
    k: int
    flt: Filter | None
    scope: AccessScope | None = None
    model: str | None = None


@dataclass
class FakeKeywordIndex:
    """``KeywordIndex``: score = number of query words in the chunk."""

    texts: Mapping[str, str]
    asked: list[Asked] = field(default_factory=list)

    def search(
        self, query: str, k: int, flt: Filter | None = None, *, scope: AccessScope | None = None
    ) -> list[ScoredChunk]:
        self.asked.append(Asked(k, flt, scope))
        words = set(query.lower().split())
        scored = [(cid, float(len(words & set(t.split())))) for cid, t in self.texts.items()]
        found = sorted(((c, s) for c, s in scored if s > 0), key=lambda cs: (-cs[1], cs[0]))
        return [ScoredChunk(cid, s, rank) for rank, (cid, s) in enumerate(found[:k], 1)]


@dataclass
class FakeVectorIndex:
    """``VectorIndex``: cosine over fixed unit vectors."""

    vectors: Mapping[str, npt.NDArray[np.float32]]
    asked: list[Asked] = field(default_factory=list)

    def search(
        self,
        vector: npt.NDArray[np.float32],
        k: int,
        flt: Filter | None = None,
        *,
        scope: AccessScope | None = None,
        model: str | None = None,
    ) -> list[ScoredChunk]:
        self.asked.append(Asked(k, flt, scope, model))
        scored = sorted(
            ((cid, float(v @ vector)) for cid, v in self.vectors.items()),
            key=lambda cs: (-cs[1], cs[0]),
        )
        return [ScoredChunk(cid, s, rank) for rank, (cid, s) in enumerate(scored[:k], 1)]


class FakeChunks:
    """The one ``DocumentStore`` call the retriever makes: ``get_chunks``."""

    def __init__(self, texts: Mapping[str, str]) -> None:
        self.chunks = {
            cid: Chunk(cid, "doc", "c", i, t, 0, len(t)) for i, (cid, t) in enumerate(texts.items())
        }
        self.scopes: list[AccessScope | None] = []

    def get_chunks(
        self, chunk_ids: Sequence[str], *, scope: AccessScope | None = None
    ) -> Mapping[str, Chunk]:
        self.scopes.append(scope)
        return {cid: self.chunks[cid] for cid in chunk_ids if cid in self.chunks}


class FixedEmbedder:
    """``Embedder`` whose every query lands on ``QUERY_VECTOR``."""

    name = "fixed"
    dimension = DIM
    tokenizer: TokenCounter = RegexTokenCounter()
    queries: list[str]

    def __init__(self) -> None:
        self.queries = []

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.stack([QUERY_VECTOR for _ in texts]) if texts else np.zeros((0, DIM), np.float32)

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        self.queries.append(text)
        return QUERY_VECTOR


@dataclass
class Parts:
    keyword: FakeKeywordIndex
    vectors: FakeVectorIndex
    chunks: FakeChunks
    embedder: FixedEmbedder


@pytest.fixture
def parts() -> Parts:
    return Parts(
        FakeKeywordIndex(TEXTS), FakeVectorIndex(VECTORS), FakeChunks(TEXTS), FixedEmbedder()
    )


def retriever(parts: Parts, **kwargs: object) -> Iterator[HybridRetriever]:
    r = HybridRetriever(parts.chunks, parts.keyword, parts.vectors, parts.embedder, **kwargs)  # type: ignore[arg-type]
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def hybrid(parts: Parts) -> Iterator[HybridRetriever]:
    yield from retriever(parts, fusion="rrf", rrf_k=60, candidates=10)


QUERY = "how often rotate api keys"  # keyword: c1 (3 words), c3 (2 words)


def test_bm25_mode_is_the_keyword_order(hybrid: HybridRetriever, parts: Parts) -> None:
    result = hybrid.search(QUERY, 5, mode="bm25")
    assert [h.chunk.id for h in result.hits] == ["c1", "c3"]
    assert [(h.keyword_rank, h.keyword_score) for h in result.hits] == [(1, 3.0), (2, 2.0)]
    assert all(h.dense_rank is None and h.dense_score is None for h in result.hits)
    assert [h.score for h in result.hits] == [3.0, 2.0]  # the keyword scores themselves
    assert parts.vectors.asked == [] and parts.embedder.queries == []  # no embedding
    assert parts.keyword.asked[0].k == 5  # not widened to the candidates


def test_dense_mode_is_the_vector_order(hybrid: HybridRetriever, parts: Parts) -> None:
    result = hybrid.search(QUERY, 3, mode="dense")
    assert [h.chunk.id for h in result.hits] == ["c1", "c3", "c2"]
    assert [h.dense_rank for h in result.hits] == [1, 2, 3]
    assert all(h.keyword_rank is None for h in result.hits)
    assert parts.keyword.asked == [] and parts.embedder.queries == [QUERY]


def test_hybrid_fuses_both_lists(hybrid: HybridRetriever, parts: Parts) -> None:
    result = hybrid.search(QUERY, 3)
    keyword = parts.keyword.search(QUERY, 10)
    dense = parts.vectors.search(QUERY_VECTOR, 10)
    expected = ranked(rrf([keyword, dense], [0.5, 0.5]))[:3]
    # by hand: c1 1st in both, c3 2nd in both, then c2 (dense 3rd) before c4 (dense 4th)
    assert [cid for cid, _ in expected] == ["c1", "c3", "c2"]
    assert [h.chunk.id for h in result.hits] == [cid for cid, _ in expected]
    assert [h.score for h in result.hits] == pytest.approx([score for _, score in expected])
    assert result.hits[0].score == pytest.approx(0.5 / 61 + 0.5 / 61)
    first = result.hits[0]
    assert (first.keyword_rank, first.dense_rank) == (1, 1)
    assert result.hits[2].keyword_rank is None and result.hits[2].dense_rank == 3


def test_hybrid_asks_each_index_for_the_candidates(hybrid: HybridRetriever, parts: Parts) -> None:
    hybrid.search(QUERY, 2)
    assert [a.k for a in parts.keyword.asked] == [10]
    assert [a.k for a in parts.vectors.asked] == [10]
    hybrid.search(QUERY, 25)  # k above the candidates: k
    assert parts.keyword.asked[-1].k == 25 and parts.vectors.asked[-1].k == 25


def test_the_filter_goes_to_both_indexes(hybrid: HybridRetriever, parts: Parts) -> None:
    flt = Filter(collection="c", metadata={"team": "ops"})
    hybrid.search(QUERY, 3, flt=flt)
    assert parts.keyword.asked[-1].flt == flt and parts.vectors.asked[-1].flt == flt


def test_the_dense_half_asks_for_the_embedders_model(hybrid: HybridRetriever, parts: Parts) -> None:
    hybrid.search(QUERY, 3)  # collections of another model are not compared (issue 13)
    assert parts.vectors.asked[-1].model == "fixed"


def test_the_scope_goes_to_both_indexes_and_the_chunk_lookup(
    hybrid: HybridRetriever, parts: Parts
) -> None:
    hybrid.search(QUERY, 3)  # no scope: the stores' default (default tenant, every principal)
    assert parts.keyword.asked[-1].scope is None and parts.vectors.asked[-1].scope is None
    assert parts.chunks.scopes == [None]
    scope = AccessScope("acme", frozenset({"alice"}))
    hybrid.search(QUERY, 3, scope=scope)
    assert parts.keyword.asked[-1].scope == scope and parts.vectors.asked[-1].scope == scope
    assert parts.chunks.scopes[-1] == scope


def test_weights_steer_the_fusion(parts: Parts) -> None:
    # keyword weight 0: only the dense ranks count (c4 is last in dense, absent in keyword)
    for r in retriever(parts, fusion="rrf", keyword_weight=0.0, dense_weight=1.0):
        assert [h.chunk.id for h in r.search(QUERY, 4).hits] == ["c1", "c3", "c2", "c4"]
    for r in retriever(parts, fusion="rrf", keyword_weight=1.0, dense_weight=0.0):
        assert [h.chunk.id for h in r.search(QUERY, 2).hits] == ["c1", "c3"]


def test_a_hit_whose_chunk_is_gone_is_dropped(hybrid: HybridRetriever, parts: Parts) -> None:
    del parts.chunks.chunks["c3"]  # deleted between the index search and the lookup
    result = hybrid.search(QUERY, 3)
    assert [h.chunk.id for h in result.hits] == ["c1", "c2"]


def test_result_carries_query_mode_and_confidence(hybrid: HybridRetriever) -> None:
    result = hybrid.search(QUERY, 3)
    assert (result.query, result.mode) == (QUERY, "hybrid")
    signals = result.confidence
    assert signals.agreement  # c1 first in both
    assert signals.top_score == result.hits[0].score
    assert signals.margin == pytest.approx(result.hits[0].score - result.hits[1].score)
    assert signals.top_keyword_score == 3.0
    assert signals.top_dense_score == pytest.approx(float(VECTORS["c1"] @ QUERY_VECTOR))


def test_nothing_found_is_an_empty_result(parts: Parts) -> None:
    for r in retriever(parts, fusion="dbsf"):
        result = r.search("zebra", 3, mode="bm25")
        assert result.hits == () and result.confidence.top_score == 0.0


def test_bad_queries_are_query_errors(hybrid: HybridRetriever) -> None:
    with pytest.raises(QueryError):
        hybrid.search("   ", 3)
    with pytest.raises(QueryError):
        hybrid.search(QUERY, 3, mode="semantic")  # type: ignore[arg-type]


def test_an_unknown_fusion_is_refused_at_construction(parts: Parts) -> None:
    with pytest.raises(ValueError, match="unknown fusion"):
        HybridRetriever(parts.chunks, parts.keyword, parts.vectors, parts.embedder, fusion="magic")  # type: ignore[arg-type]

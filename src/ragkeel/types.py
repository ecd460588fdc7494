"""Value types shared by every layer: parsed blocks, documents, chunks, search hits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MetaValue = str | int | float | bool
Metadata = Mapping[str, MetaValue]
BlockKind = Literal["heading", "paragraph", "table", "list", "code"]

DEFAULT_TENANT = "default"  # the tenant of every document and request while auth is off


@dataclass(frozen=True, slots=True)
class Block:
    """One structural unit a parser found: a heading, a paragraph, a table (rows as lines)..."""

    text: str
    kind: BlockKind = "paragraph"
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    level: int = 0  # heading level (1 = top) for kind == "heading"


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """What a parser returns for one logical document (a file, or one record of a JSONL corpus)."""

    title: str
    blocks: tuple[Block, ...]
    metadata: Metadata = field(default_factory=dict)
    external_id: str | None = None  # e.g. the BEIR ``_id``; kept as the document id


@dataclass(frozen=True, slots=True)
class Document:
    """A stored document: normalised full text plus provenance. It belongs to ``tenant`` (its
    identity in a store is (tenant, collection, id)) and is visible to the ``principals`` its
    ACL names, or to everyone in the tenant when there are none (see ``AccessScope``)."""

    id: str
    collection: str
    source: str
    title: str
    text: str
    content_hash: str
    metadata: Metadata = field(default_factory=dict)
    tenant: str = DEFAULT_TENANT
    principals: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable span of a document. ``start``/``end`` are character offsets into ``Document.text``."""

    id: str
    document_id: str
    collection: str
    ordinal: int
    text: str
    start: int
    end: int
    title: str = ""
    source: str = ""
    heading_path: tuple[str, ...] = ()
    page: int | None = None
    token_count: int = 0
    metadata: Metadata = field(default_factory=dict)

    def context_path(self) -> list[str]:
        """Title then headings, without a top heading that repeats the title."""
        parts = [self.title] if self.title else []
        for heading in self.heading_path:
            if heading and (not parts or heading.casefold() != parts[-1].casefold()):
                parts.append(heading)
        return parts

    def index_text(self) -> str:
        """The text the keyword index and the embedder see: title and headings give context."""
        context = " > ".join(self.context_path())
        return f"{context}\n{self.text}" if context else self.text


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    """One retriever's hit: a chunk id with its rank (1-based) and raw score."""

    chunk_id: str
    score: float
    rank: int


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A fused hit with each retriever's rank and score (``None`` when that retriever missed it).
    ``score`` is the fused score; ``rerank_score`` the reranker's when the hits were reranked
    (then they are in the reranker's order, issue 15)."""

    chunk: Chunk
    score: float
    keyword_rank: int | None = None
    keyword_score: float | None = None
    dense_rank: int | None = None
    dense_score: float | None = None
    rerank_score: float | None = None


@dataclass(frozen=True, slots=True)
class Confidence:
    """Signals for the answer gate: how sure retrieval is that it found something relevant."""

    top_score: float
    margin: float  # top-1 minus top-2 fused score (0 when fewer than two hits)
    top_dense_score: float | None  # cosine of the best dense hit
    top_keyword_score: float | None  # BM25 of the best keyword hit
    agreement: bool  # the keyword and dense top hits are the same chunk


RerankDecision = Literal["applied", "skipped", "failed"]


@dataclass(frozen=True, slots=True)
class RerankOutcome:
    """What the conditional reranking did for one search (issue 15; ``retrieval/rerank.py``):
    ``applied`` (the hits are in the reranker's order), ``skipped`` (the fused ranking was not
    ambiguous) or ``failed`` (the reranker raised ``error``, a stable code: the fused order is
    kept). ``reason`` is the gate's: ``low_margin``, ``disagreement``, ``low_top_score``,
    ``always`` (reranked, or tried) or ``confident``, ``few_hits`` (skipped). ``calls``: the
    rerank call's own call log (``CallLog.to_dict()``: attempts, retries, breaker), if made."""

    decision: RerankDecision
    reason: str
    margin: float  # the fused top-1 minus top-2 score the gate read
    error: str | None = None
    candidates: int = 0  # passages sent to the reranker
    latency_ms: float = 0.0  # the rerank call, retries included (0 when skipped)
    top_changed: bool = False  # the reranker put another chunk first
    calls: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str
    mode: str
    hits: tuple[SearchHit, ...]
    confidence: Confidence  # of the fused ranking (before any reranking)
    timings_ms: Mapping[str, float] = field(default_factory=dict)
    rerank: RerankOutcome | None = None  # None: no reranker configured


@dataclass(frozen=True, slots=True)
class GateDecision:
    """Whether the answer gate let a question through to the model, and on what evidence. One
    record for the answer flow, the API (``GateOut``) and the trace."""

    passed: bool
    reason: str  # "dense", "keyword" (which signal let it through), "low_confidence", "no_hits"
    top_dense: float | None
    top_keyword: float | None
    dense_threshold: float
    keyword_threshold: float | None


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered source an answer cites. One record for the answer flow, the API
    (``CitationOut``) and the trace."""

    number: int
    document_id: str
    chunk_id: str
    source: str
    title: str
    page: int | None
    snippet: str


@dataclass(frozen=True, slots=True)
class AccessScope:
    """Whose data a request may see (issue 11): the caller's ``tenant`` and the ACL
    ``principals`` (user and group names) its key grants. A document is visible when it
    belongs to the tenant and is public within it or names one of the principals.
    ``all_principals`` skips the per-document ACL inside the tenant (an operator on the CLI,
    an admin key); it never crosses tenants. Built at the edge from the caller's identity,
    passed down to every search, listing, trace and cost read; the store enforces it inside
    the keyword and the dense search."""

    tenant: str = DEFAULT_TENANT
    principals: frozenset[str] = frozenset()
    all_principals: bool = False

"""Bodies of the trace and cost routes (``routes/traces.py``): a trace list's rows, one trace in
full, cost totals. Built from the observability records by ``of`` constructors; what a trace
shows of documents goes through the same projections as answers (``public_ids.PublicView``:
service ids and file names, never server paths; then ``CitationOut``, ``HitOut``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ragkeel.api.public_ids import PublicView
from ragkeel.api.schemas import CitationOut, GateOut, HitOut
from ragkeel.observability.cost_ledger import CostTotal
from ragkeel.observability.trace import PromptRecord, RetrievedChunk
from ragkeel.observability.trace_store import TraceSummary
from ragkeel.types import Chunk, SearchHit

OutcomeOut = Literal["answered", "cannot_answer", "degraded", "error"]


class TraceSummaryOut(BaseModel):
    """One row of ``GET /v1/traces``."""

    id: str
    created_at: str = Field(description="ISO 8601, UTC, milliseconds")
    route: str
    outcome: OutcomeOut
    tenant: str | None = Field(description="None: recorded before traces had tenants")
    model: str | None
    mode: str | None
    grounded: bool | None
    total_ms: float | None
    cost: float
    input_tokens: int
    output_tokens: int
    error_code: str | None
    degraded_reason: str | None
    question: str

    @classmethod
    def of(cls, s: TraceSummary) -> TraceSummaryOut:
        return cls.model_validate(s.to_dict())


class TraceListOut(BaseModel):
    traces: list[TraceSummaryOut]
    next_before: str | None = Field(
        description="pass as before= for the next page; None: this is the last page"
    )


class TraceHitOut(BaseModel):
    """A retrieved chunk as the trace recorded it (ids, fused score, each retriever's rank and
    score), with the chunk's place and text when it is still stored (else those are None)."""

    rank: int
    chunk_id: str
    document_id: str
    score: float
    keyword_rank: int | None
    keyword_score: float | None
    dense_rank: int | None
    dense_score: float | None
    stored: bool = Field(description="whether the chunk is still in the index")
    collection: str | None = None
    title: str | None = None
    source: str | None = None
    page: int | None = None
    heading_path: list[str] | None = None
    text: str | None = None

    @classmethod
    def of(cls, rank: int, r: RetrievedChunk, chunk: Chunk | None, view: PublicView) -> TraceHitOut:
        if chunk is None:
            return cls(
                rank=rank,
                chunk_id=r.chunk_id,
                document_id=view.id(r.document_id),
                score=r.score,
                keyword_rank=r.keyword_rank,
                keyword_score=r.keyword_score,
                dense_rank=r.dense_rank,
                dense_score=r.dense_score,
                stored=False,
            )
        hit = SearchHit(  # shown like an answer's hit (HitOut: the answers' projection)
            chunk, r.score, r.keyword_rank, r.keyword_score, r.dense_rank, r.dense_score
        )
        return cls(stored=True, **HitOut.from_hit(rank, view.hit(hit)).model_dump())


class PromptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the record itself
    sha256: str
    chars: int
    tokens: int
    text: str | None = Field(description="None: not kept (observability.keep_prompt_text)")

    @classmethod
    def of(cls, p: PromptRecord, *, keep_text: bool) -> PromptOut:
        out = cls.model_validate(p)
        return out if keep_text else out.model_copy(update={"text": None})


class TraceErrorOut(BaseModel):
    code: str
    message: str


class TraceDegradedOut(BaseModel):
    reason: str
    detail: str | None


class WithheldOut(BaseModel):
    """What this caller's ACL principals may not see of a trace: the chunks of documents it
    cannot read (or that are no longer stored), and with them the prompt text and the output,
    which may quote those documents."""

    chunks: int
    prompt_text: bool
    output: bool


class TraceOut(BaseModel):
    """``GET /v1/traces/{id}``: what one request did."""

    id: str
    created_at: str
    route: str
    outcome: OutcomeOut
    tenant: str | None
    question: str
    mode: str | None
    model: str | None
    template_version: str | None
    grounded: bool | None
    input_tokens: int
    output_tokens: int
    cost: float
    latency_ms: dict[str, float]
    error: TraceErrorOut | None
    degraded: TraceDegradedOut | None
    gate: GateOut | None
    retrieved: list[TraceHitOut]
    prompt: PromptOut | None
    output: str | None
    citations: list[CitationOut]
    gateway: dict[str, Any] | None
    attributes: dict[str, str | int | float | bool] = Field(
        description="the scalar facts under OpenTelemetry GenAI / ragkeel.* names"
    )
    withheld: WithheldOut | None = Field(
        description="None: nothing of this trace is hidden from this caller"
    )


class CostTotalOut(BaseModel):
    key: str = Field(description="the model, the tenant or the UTC day (YYYY-MM-DD)")
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float = Field(description="USD")

    @classmethod
    def of(cls, t: CostTotal) -> CostTotalOut:
        return cls.model_validate(t.to_dict())


class CostsOut(BaseModel):
    by: Literal["model", "tenant", "day"]
    since: float | None
    until: float | None
    totals: list[CostTotalOut]
    total: CostTotalOut = Field(description="every row added up (key: 'total')")

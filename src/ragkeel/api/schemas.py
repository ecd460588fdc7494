"""Request and response bodies of the ragkeel routes (the OpenAI-compatible ones are in
``openai_schemas.py``). Responses are built from the domain values by ``from_*`` constructors.

Request bodies take finite numbers only (``allow_inf_nan=False``; inside free-form JSON such as
``output_schema`` too) and nest at most ``request_limits.MAX_JSON_DEPTH`` levels."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ragkeel.api.problems import client_message
from ragkeel.api.request_limits import check_json_body, non_finite_at
from ragkeel.errors import RagkeelError
from ragkeel.evaluation.metrics.answers import schema_problem
from ragkeel.generation.answer import Answer, RetrievalEvent
from ragkeel.generation.steps import SCHEMA_UNSUPPORTED_DETAIL
from ragkeel.ingestion.report import FileResult
from ragkeel.types import MetaValue, SearchHit, SearchResult

PUBLIC_ID = (
    "the document's id assigned by the service (doc_ + 32 hex digits; stable, unique within "
    "the collection), never a server path"
)
SOURCE_NAME = (
    "the original file name, no directories (name#record-id for one record of a CSV or "
    "JSON-lines file; a JSON text document's id)"
)
GenerationModeIn = Literal["generative", "extractive"]
SearchModeIn = Literal["bm25", "dense", "hybrid"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TurnIn(_Strict):
    """One earlier turn of a conversation (``QueryRequest.history``)."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=100_000)


class QueryRequest(_Strict):
    question: str = Field(min_length=1, description="the question (at most 4,000 characters)")
    history: list[TurnIn] = Field(
        default_factory=list,
        max_length=100,
        description="the conversation before the question, oldest first: a follow-up is made "
        "standalone from it before retrieval (generation.condense; the answer's question is "
        "the standalone one)",
    )
    collection: str | None = Field(default=None, description="search one collection only")
    k: int | None = Field(default=None, ge=1, le=100, description="chunks retrieved")
    mode: GenerationModeIn | None = Field(default=None, description="default: the server's")
    stream: bool = Field(default=False, description="answer as server-sent events")
    max_cost: float | None = Field(
        default=None, ge=0, description="USD this answer may cost at most (default: the server's)"
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=1_000_000, description="tokens at most, prompt plus answer"
    )
    output_schema: dict[str, Any] | None = Field(
        default=None,
        description="answer with one JSON value valid against this JSON schema "
        "(schema-constrained decoding where the model supports it)",
    )
    cache: bool = Field(
        default=True,
        description="false: do not answer from the answer cache (the fresh answer replaces "
        "the stored one), like the header Cache-Control: no-cache",
    )

    @model_validator(mode="before")
    @classmethod
    def _not_too_deep(cls, data: Any) -> Any:
        return check_json_body(data)

    @field_validator("output_schema")
    @classmethod
    def _a_valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            where = non_finite_at(value)
            if where is not None:
                raise PydanticCustomError(
                    "finite_number",
                    "Input should be a finite number (at {where})",
                    {"where": where},
                )
            problem = schema_problem(value)
            if problem is not None:
                raise ValueError(f"output_schema is not a valid JSON schema: {problem}")
        return value


class UsageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the record itself
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CitationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the record itself
    number: int
    document_id: str = Field(description=PUBLIC_ID)
    chunk_id: str
    source: str = Field(description=SOURCE_NAME)
    title: str
    page: int | None
    snippet: str


class SourceOut(BaseModel):
    """One retrieved chunk as the ``sources`` event shows it before the answer: where it is
    (document, file name, title, page) and how well it matched; no text."""

    rank: int
    chunk_id: str
    document_id: str = Field(description=PUBLIC_ID)
    collection: str
    title: str
    source: str = Field(description=SOURCE_NAME)
    page: int | None
    score: float

    @classmethod
    def of(cls, rank: int, h: SearchHit) -> SourceOut:
        c = h.chunk
        return SourceOut(
            rank=rank,
            chunk_id=c.id,
            document_id=c.document_id,
            collection=c.collection,
            title=c.title,
            source=c.source,
            page=c.page,
            score=h.score,
        )


class HitOut(SourceOut):
    """A retrieved chunk in full: its source, its text and how each retriever ranked it."""

    heading_path: list[str]
    text: str
    keyword_rank: int | None
    keyword_score: float | None
    dense_rank: int | None
    dense_score: float | None

    @classmethod
    def from_hit(cls, rank: int, h: SearchHit) -> HitOut:
        c = h.chunk
        return cls(
            **SourceOut.of(rank, h).model_dump(),
            heading_path=list(c.heading_path),
            text=c.text,
            keyword_rank=h.keyword_rank,
            keyword_score=h.keyword_score,
            dense_rank=h.dense_rank,
            dense_score=h.dense_score,
        )


class ConfidenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the record itself
    top_score: float
    margin: float
    top_dense_score: float | None
    top_keyword_score: float | None
    agreement: bool


class GateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the record itself
    passed: bool
    reason: str
    top_dense: float | None
    top_keyword: float | None
    dense_threshold: float
    keyword_threshold: float | None


class CacheOut(BaseModel):
    """``Answer.cache`` (issue 14, ``generation/answer.py``'s ``CacheOutcome``)."""

    model_config = ConfigDict(from_attributes=True)

    decision: Literal["hit", "miss", "bypass"]
    kind: Literal["exact", "semantic"] | None = None
    stored: bool = False
    skip: str | None = Field(default=None, description="why the fresh answer was not kept")
    age_s: float | None = Field(default=None, description="a hit: how old the answer is")
    similarity: float | None = Field(default=None, description="a semantic hit's cosine")


class AnswerOut(BaseModel):
    question: str
    text: str
    citations: list[CitationOut]
    mode: Literal["generative", "extractive", "cannot_answer"]
    grounded: bool
    degraded: bool
    degraded_reason: str | None
    degraded_detail: str | None
    usage: UsageOut
    cost: float
    latency_ms: dict[str, float]
    trace_id: str | None
    model: str | None
    template_version: str | None
    invalid_citations: list[int]
    unsupported_sentences: list[str]
    gate: GateOut | None
    hits: list[HitOut]
    served_by: str | None = Field(
        description="which rung answered: a deployment's name, 'extractive' or 'cannot_answer'"
    )
    gateway: dict[str, Any] | None = Field(
        description="what the gateway did: attempts (deployment, outcome, code, latency, "
        "tokens, cost) and decisions (router, budget, retry, breaker, fallback)"
    )
    cached: bool = Field(
        default=False,
        description="served from the answer cache: no retrieval and no model call this time",
    )
    cache: CacheOut | None = Field(
        default=None, description="what the answer cache did (null: no cache configured)"
    )

    @classmethod
    def from_answer(cls, a: Answer, trace_id: str | None) -> AnswerOut:
        return cls(
            question=a.question,
            text=a.text,
            citations=[CitationOut.model_validate(c) for c in a.citations],
            mode=a.mode,
            grounded=a.grounded,
            degraded=a.degraded,
            degraded_reason=a.degraded_reason,
            degraded_detail=_client_detail(a),
            usage=UsageOut.model_validate(a.usage),
            cost=a.cost,
            latency_ms=dict(a.latency_ms),
            trace_id=trace_id,
            model=a.model,
            template_version=a.template_version,
            invalid_citations=list(a.invalid_citations),
            unsupported_sentences=list(a.unsupported_sentences),
            gate=GateOut.model_validate(a.gate) if a.gate else None,
            hits=[HitOut.from_hit(i, h) for i, h in enumerate(a.hits, start=1)],
            served_by=a.served_by,
            gateway=dict(a.gateway) if a.gateway is not None else None,
            cached=a.cached,
            cache=CacheOut.model_validate(a.cache) if a.cache is not None else None,
        )


def _client_detail(a: Answer) -> str | None:
    """``degraded_detail`` as clients may read it (``client_message``; the trace keeps it
    whole), still saying when the JSON asked for was not given."""
    if a.degraded_reason is None or a.degraded_detail is None:
        return a.degraded_detail
    detail = client_message(a.degraded_reason, a.degraded_detail)
    if a.degraded_detail.endswith(SCHEMA_UNSUPPORTED_DETAIL) and not detail.endswith(
        SCHEMA_UNSUPPORTED_DETAIL
    ):
        detail = f"{detail}; {SCHEMA_UNSUPPORTED_DETAIL}"
    return detail


class SourcesOut(BaseModel):
    """The ``sources`` event of a streamed answer (and the ``ragkeel`` field of an OpenAI
    stream's second chunk): the retrieved sources and the gate's decision, sent as soon as
    retrieval and the gate end, before the model is called."""

    sources: list[SourceOut]
    gate: GateOut
    confidence: ConfidenceOut

    @classmethod
    def from_event(cls, e: RetrievalEvent) -> SourcesOut:
        return cls(
            sources=[SourceOut.of(i, h) for i, h in enumerate(e.hits, start=1)], **_judged(e)
        )


class RetrievalOut(BaseModel):
    """The ``retrieval`` event of a streamed answer: the hits in full (texts, per-retriever
    ranks), right after ``sources``."""

    hits: list[HitOut]
    confidence: ConfidenceOut
    gate: GateOut

    @classmethod
    def from_event(cls, e: RetrievalEvent) -> RetrievalOut:
        return cls(
            hits=[HitOut.from_hit(i, h) for i, h in enumerate(e.hits, start=1)], **_judged(e)
        )


def _judged(e: RetrievalEvent) -> dict[str, Any]:
    """The gate's decision and the retrieval's confidence, as both retrieval events send them."""
    return {
        "gate": GateOut.model_validate(e.gate),
        "confidence": ConfidenceOut.model_validate(e.confidence),
    }


class SearchOut(BaseModel):
    query: str
    mode: str
    hits: list[HitOut]
    confidence: ConfidenceOut
    timings_ms: dict[str, float]

    @classmethod
    def from_result(cls, r: SearchResult) -> SearchOut:
        return cls(
            query=r.query,
            mode=r.mode,
            hits=[HitOut.from_hit(i, h) for i, h in enumerate(r.hits, start=1)],
            confidence=ConfidenceOut.model_validate(r.confidence),
            timings_ms={k: round(v, 3) for k, v in r.timings_ms.items()},
        )


class TextDocumentIn(_Strict):
    """A document sent as JSON text rather than as a file."""

    text: str = Field(min_length=1)
    title: str | None = None
    id: str | None = Field(default=None, min_length=1, max_length=512)
    collection: str | None = None
    metadata: dict[str, MetaValue] = Field(default_factory=dict)
    principals: list[str] = Field(default_factory=list, max_length=256)  # the ACL; none: public
    # issue 15: the collection's keyword language (default: its own, or retrieval.language)
    language: str | None = Field(default=None, min_length=1, max_length=64)


class FileReportOut(BaseModel):
    filename: str = Field(description="as uploaded (for JSON text: the document id)")
    source: str = Field(
        description="the name the file is kept under (directories and odd characters "
        "dropped; for JSON text: the document id), never a server path"
    )
    status: str
    document_ids: list[str] = Field(description="public ids (doc_...) of the file's documents")
    documents: int
    unchanged: int
    chunks: int
    error_code: str | None
    error_message: str | None
    record_errors: list[dict[str, str]]
    _error: type[RagkeelError] | None = PrivateAttr(default=None)  # its class: the HTTP status

    @classmethod
    def of(
        cls,
        f: FileResult,
        *,
        filename: str,
        document_ids: list[str],
        source: str,
        scrub: Callable[[str], str],
    ) -> FileReportOut:
        """The report of ``f``, its messages passed through ``scrub`` (no server paths)."""
        out = cls(
            filename=filename,
            source=source,
            status=f.status,
            document_ids=document_ids,
            documents=f.documents,
            unchanged=f.unchanged,
            chunks=f.chunks,
            error_code=f.error_code,
            error_message=scrub(f.error_message) if f.error_message is not None else None,
            record_errors=[{k: scrub(v) for k, v in e.items()} for e in f.record_errors],
        )
        out._error = f.error
        return out

    @property
    def error(self) -> type[RagkeelError] | None:
        return self._error


class IngestOut(BaseModel):
    collection: str
    files: list[FileReportOut]
    documents_written: int
    documents_unchanged: int
    chunks_written: int
    elapsed_seconds: float


class DocumentOut(BaseModel):
    id: str = Field(description=PUBLIC_ID + "; DELETE /v1/documents/{id} takes it")
    title: str
    source: str = Field(description=SOURCE_NAME)
    filename: str = Field(description="the name of the file it came from (JSON text: its id)")
    chunks: int
    metadata: Mapping[str, MetaValue]


class DocumentListOut(BaseModel):
    collection: str
    total: int
    offset: int
    limit: int
    documents: list[DocumentOut]


class DeletedOut(BaseModel):
    collection: str
    id: str = Field(description="the public id that was deleted")
    deleted: bool

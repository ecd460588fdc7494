"""``Trace``: what one request did, as plain data (no dependency on the generation layer: the
gate decision and the citations are the core records of ``types.py``, shared with the answer
flow and the API).

One trace per ``ask``, ``/v1/query`` or ``/v1/chat/completions``: the question, what retrieval
returned (ranks and scores per retriever), the gate decision, the prompt (or only its hash and
size), the output and its citations, model, template version, token usage, cost, stage
latencies and the outcome. ``generation/tracing.py`` builds one from an ``Answer``.

Trace ids (``context.py``: 32 hex digits, time-ordered) are assigned when the request starts:
a trace built inside a request takes the request's id (``context.current_or_new_trace_id``), so
log lines written during the request carry the id of the trace recorded at its end; outside a
request a trace gets a fresh id.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from ragkeel.observability import names
from ragkeel.observability.context import current_or_new_trace_id, new_trace_id
from ragkeel.types import Citation, GateDecision, SearchHit

Outcome = Literal["answered", "cannot_answer", "degraded", "error"]
OUTCOMES: tuple[Outcome, ...] = ("answered", "cannot_answer", "degraded", "error")
AttributeValue = str | int | float | bool
__all__ = [
    "OUTCOMES",
    "AttributeValue",
    "Outcome",
    "PromptRecord",
    "RetrievedChunk",
    "Trace",
    "new_trace_id",
]


@dataclass(frozen=True, slots=True)
class RetrievedChunk:
    """One retrieval hit as the trace keeps it (a projection of ``SearchHit``: the chunk's ids
    and each retriever's rank and score, not its text), in rank order (fused, or the
    reranker's); a retriever that missed it has ``None``s."""

    chunk_id: str
    document_id: str
    score: float
    keyword_rank: int | None = None
    keyword_score: float | None = None
    dense_rank: int | None = None
    dense_score: float | None = None
    rerank_score: float | None = None  # the reranker's, when it reordered the hits (issue 15)

    @classmethod
    def of(cls, hit: SearchHit) -> RetrievedChunk:
        return cls(
            hit.chunk.id,
            hit.chunk.document_id,
            hit.score,
            hit.keyword_rank,
            hit.keyword_score,
            hit.dense_rank,
            hit.dense_score,
            hit.rerank_score,
        )


@dataclass(frozen=True, slots=True)
class PromptRecord:
    """The packed prompt sent to the model: always its sha256 and size, the text only if kept."""

    sha256: str
    chars: int
    tokens: int
    text: str | None = None

    @classmethod
    def of(cls, text: str, *, tokens: int, keep_text: bool) -> PromptRecord:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return cls(digest, len(text), tokens, text if keep_text else None)

    def without_text(self) -> PromptRecord:
        return replace(self, text=None)


@dataclass(frozen=True, slots=True)
class Trace:
    route: str  # names.ROUTE_CLI_ASK, ROUTE_API_QUERY, ROUTE_API_CHAT
    question: str
    outcome: Outcome
    id: str = field(default_factory=current_or_new_trace_id)
    created_at: float = field(default_factory=time.time)  # Unix seconds
    error_code: str | None = None
    error_message: str | None = None
    mode: str | None = None  # the answer's mode: generative, extractive, cannot_answer
    model: str | None = None
    template_version: str | None = None
    grounded: bool | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency_ms: Mapping[str, float] = field(default_factory=dict)  # keys: names.STAGES
    retrieved: tuple[RetrievedChunk, ...] = ()
    gate: GateDecision | None = None
    prompt: PromptRecord | None = None
    output: str = ""
    citations: tuple[Citation, ...] = ()
    degraded_reason: str | None = None  # stable code: NO_MODEL, MODEL_TIMEOUT, MODEL_EMPTY...
    degraded_detail: str | None = None  # the failure's message
    tenant: str | None = None
    # what the gateway did (CallLog.to_dict()): served_by, rung, cost, attempts, decisions; and
    # beside it the answer cache's outcome ("cache") and the conditional reranking's ("rerank")
    gateway: Mapping[str, Any] | None = None

    @property
    def total_ms(self) -> float | None:
        return self.latency_ms.get(names.STAGE_TOTAL)

    @property
    def created_iso(self) -> str:
        when = datetime.fromtimestamp(self.created_at, UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def without_prompt_text(self) -> Trace:
        return self if self.prompt is None else replace(self, prompt=self.prompt.without_text())

    def attributes(self) -> dict[str, AttributeValue]:
        """The scalar facts under OpenTelemetry GenAI / ``ragkeel.*`` names (``names.py``), as
        the attributes of the span an exporter would send; unset values are left out."""
        gate = self.gate
        prompt = self.prompt
        pairs: list[tuple[str, AttributeValue | None]] = [
            (names.ROUTE, self.route),
            (names.OUTCOME, self.outcome),
            (names.GEN_AI_OPERATION_NAME, names.OPERATION_CHAT if self.model else None),
            (names.GEN_AI_REQUEST_MODEL, self.model),
            (names.GEN_AI_USAGE_INPUT_TOKENS, self.input_tokens),
            (names.GEN_AI_USAGE_OUTPUT_TOKENS, self.output_tokens),
            (names.USAGE_COST, self.cost),
            (names.ERROR_TYPE, self.error_code),
            (names.ANSWER_MODE, self.mode),
            (names.ANSWER_GROUNDED, self.grounded),
            (names.ANSWER_DEGRADED_REASON, self.degraded_reason),
            (names.ANSWER_CITATIONS, len(self.citations)),
            (names.PROMPT_TEMPLATE_VERSION, self.template_version),
            (names.PROMPT_SHA256, prompt.sha256 if prompt else None),
            (names.PROMPT_CHARS, prompt.chars if prompt else None),
            (names.PROMPT_TOKENS, prompt.tokens if prompt else None),
            (names.RETRIEVAL_HITS, len(self.retrieved)),
            (names.RETRIEVAL_TOP_CHUNK_ID, self.retrieved[0].chunk_id if self.retrieved else None),
            *gate_pairs(gate),
            (names.LATENCY_TOTAL_MS, self.total_ms),
            (names.TENANT, self.tenant),
            (names.GATEWAY_SERVED_BY, _get(self.gateway, "served_by")),
            (names.GATEWAY_RUNG, _get(self.gateway, "rung")),
            (names.GATEWAY_ATTEMPTS, len(_get(self.gateway, "attempts") or ()) or None),
            (names.CACHE_DECISION, _get(_get(self.gateway, "cache"), "decision")),
            (names.CACHE_KIND, _get(_get(self.gateway, "cache"), "kind")),
            (names.CACHE_STORED, _get(_get(self.gateway, "cache"), "stored")),
            (names.CACHE_SKIP, _get(_get(self.gateway, "cache"), "skip")),
            (names.RERANK_DECISION, _get(_get(self.gateway, "rerank"), "decision")),
            (names.RERANK_REASON, _get(_get(self.gateway, "rerank"), "reason")),
            (names.RERANK_ERROR, _get(_get(self.gateway, "rerank"), "error")),
            (names.CONDENSE_CONDENSER, _get(_get(self.gateway, "condense"), "condenser")),
            (names.CONDENSE_CHANGED, _get(_get(self.gateway, "condense"), "changed")),
            (names.CONDENSE_FALLBACK, _get(_get(self.gateway, "condense"), "fallback")),
            (names.CONDENSE_TURNS, _get(_get(self.gateway, "condense"), "turns")),
        ]
        return {k: v for k, v in pairs if v is not None}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``ragkeel trace ID --json``, the API, the dashboard): identity and the
        big payloads as keys, the scalar facts as OpenTelemetry-named ``attributes``."""
        return {
            "id": self.id,
            "created_at": self.created_iso,
            "route": self.route,
            "outcome": self.outcome,
            "question": self.question,
            "error": (
                {"code": self.error_code, "message": self.error_message}
                if self.error_code
                else None
            ),
            "degraded": (
                {"reason": self.degraded_reason, "detail": self.degraded_detail}
                if self.degraded_reason
                else None
            ),
            "attributes": self.attributes(),
            "latency_ms": dict(self.latency_ms),
            "gate": _plain(self.gate),
            "retrieved": [_plain(c) for c in self.retrieved],
            "prompt": _plain(self.prompt),
            "output": self.output,
            "citations": [_plain(c) for c in self.citations],
            "gateway": dict(self.gateway) if self.gateway is not None else None,
        }


def gate_pairs(gate: GateDecision | None) -> list[tuple[str, AttributeValue | None]]:
    """The gate decision's facts under their ``names.GATE_*`` (``None`` values: no decision)."""
    return [
        (names.GATE_PASSED, gate.passed if gate else None),
        (names.GATE_REASON, gate.reason if gate else None),
        (names.GATE_TOP_DENSE, gate.top_dense if gate else None),
        (names.GATE_TOP_KEYWORD, gate.top_keyword if gate else None),
        (names.GATE_DENSE_THRESHOLD, gate.dense_threshold if gate else None),
        (names.GATE_KEYWORD_THRESHOLD, gate.keyword_threshold if gate else None),
    ]


def _get(mapping: Mapping[str, Any] | None, key: str) -> Any:
    return mapping.get(key) if mapping is not None else None


def _plain(record: RetrievedChunk | GateDecision | PromptRecord | Citation | None) -> Any:
    return None if record is None else asdict(record)

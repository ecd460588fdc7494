"""What the answer flow returns: the ``Answer`` and the events of its stream.

``Answerer.stream`` yields, in order: one ``RetrievalEvent`` (as soon as retrieval and the gate
end, before the model is called: the edges send it as the sources, issue 14); ``TokenEvent``s
whose texts concatenate to the streamed answer; ``CitationEvent``s, one per cited source; one
``DoneEvent`` carrying the final ``Answer``. A model failure mid-answer yields a non-fatal
``ErrorEvent`` (``fatal=False``): the tokens streamed so far are void and the extractive
answer's tokens follow. A failure that cannot be degraded (retrieval, storage) yields a fatal
``ErrorEvent`` and ends the stream. ``DoneEvent.answer.text`` is always the authoritative text
(a model refusal is normalised to the exact refusal phrase there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ragkeel.errors import RagkeelError
from ragkeel.gateway.base import ChatMessage, Usage
from ragkeel.generation.citations import CitationCheck, best_snippet
from ragkeel.generation.condense import Condensed
from ragkeel.generation.context import PackedContext
from ragkeel.types import Citation, Confidence, GateDecision, RerankOutcome, SearchHit

AnswerMode = Literal["generative", "extractive", "cannot_answer"]
CacheDecision = Literal["hit", "miss", "bypass"]


@dataclass(frozen=True, slots=True)
class CacheOutcome:
    """What the answer cache did for one question (issue 14; ``cached.py``): ``hit`` (the
    answer is a stored one, found by an ``exact`` key or a ``semantic`` match of
    ``similarity``, made ``age_s`` ago), ``miss``, or ``bypass`` (the request asked not to
    look). After a fresh answer: whether it was ``stored``, else why not (``skip``: a stable
    reason such as ``degraded``, ``ungrounded``, ``no_store``)."""

    decision: CacheDecision
    kind: Literal["exact", "semantic"] | None = None
    stored: bool = False
    skip: str | None = None
    age_s: float | None = None
    similarity: float | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    text: str
    mode: AnswerMode
    citations: tuple[Citation, ...]
    grounded: bool
    degraded: bool = False
    degraded_reason: str | None = None  # stable code: NO_MODEL, MODEL_TIMEOUT, MODEL_EMPTY...
    degraded_detail: str | None = None  # the failure's message
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0  # from a price table once the gateway has one; 0 for local models
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    template_version: str | None = None  # None when no prompt was built
    model: str | None = None  # None when no model was called
    invalid_citations: tuple[int, ...] = ()
    unsupported_sentences: tuple[str, ...] = ()
    inferred_citations: tuple[int, ...] = ()  # [n] the model left out, added by support check
    hits: tuple[SearchHit, ...] = ()  # what retrieval returned, in rank order
    rerank: RerankOutcome | None = None  # the conditional reranking's (None: no reranker)
    gate: GateDecision | None = None
    prompt: tuple[ChatMessage, ...] = ()  # the messages sent to the model (for the trace)
    # which rung of the ladder produced the text: a deployment's name, "extractive", or
    # "cannot_answer"; ``gateway`` is the request's CallLog.to_dict() (attempts, decisions)
    served_by: str | None = None
    gateway: Mapping[str, Any] | None = None
    tenant: str | None = None
    cache: CacheOutcome | None = None  # None: no answer cache configured
    # a multi-turn question (issue 15): the last message and how it was made standalone
    # (``question`` is the standalone one); None: a single question, nothing was condensed
    condensed: Condensed | None = None

    @property
    def cached(self) -> bool:
        """Whether this answer was served from the answer cache (no retrieval, no model)."""
        return self.cache is not None and self.cache.decision == "hit"


def citations_of(context: PackedContext, check: CitationCheck) -> tuple[Citation, ...]:
    """One ``Citation`` per valid cited number; the snippet is the source sentence closest to the
    answer sentences citing it."""
    out: list[Citation] = []
    for number in check.cited:
        source = context.source(number)
        if source is None:  # pragma: no cover - check.cited holds packed numbers only
            continue
        near = " ".join(s.text for s in check.sentences if number in s.cited)
        chunk = source.chunk
        out.append(
            Citation(
                number=number,
                document_id=chunk.document_id,
                chunk_id=chunk.id,
                source=chunk.source,
                title=chunk.title,
                page=chunk.page,
                snippet=best_snippet(source, near),
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class RetrievalEvent:
    hits: tuple[SearchHit, ...]
    confidence: Confidence
    gate: GateDecision
    kind: Literal["retrieval"] = field(default="retrieval", init=False)


@dataclass(frozen=True, slots=True)
class TokenEvent:
    text: str
    kind: Literal["token"] = field(default="token", init=False)


@dataclass(frozen=True, slots=True)
class CitationEvent:
    citation: Citation
    kind: Literal["citation"] = field(default="citation", init=False)


@dataclass(frozen=True, slots=True)
class DoneEvent:
    answer: Answer
    kind: Literal["done"] = field(default="done", init=False)


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """A step that failed. ``fatal=False``: the answer goes on, degraded (``code`` names why:
    a model error's code, or ``MODEL_EMPTY``, ``NO_MODEL``...). ``fatal=True``: the stream ends
    here, and ``error`` is the exception itself, so the edge maps its class (not its code) to a
    status."""

    code: str
    message: str
    fatal: bool
    error: RagkeelError | None = field(default=None, compare=False)
    kind: Literal["error"] = field(default="error", init=False)

    def __post_init__(self) -> None:
        if self.fatal and self.error is None:
            raise ValueError("a fatal ErrorEvent carries its exception")

    @classmethod
    def ending(cls, error: RagkeelError) -> ErrorEvent:
        """The fatal event of ``error``."""
        return cls(error.code, str(error), fatal=True, error=error)


AnswerEvent = RetrievalEvent | TokenEvent | CitationEvent | DoneEvent | ErrorEvent

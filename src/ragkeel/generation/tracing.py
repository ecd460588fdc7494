"""An ``Answer`` (or a failure) as a ``Trace`` for the trace store, and its stages as spans.

Outcome: ``error`` when the request failed; ``cannot_answer`` when the answer is the refusal
(the gate said no, nothing fit the context, or the model refused), even if it was degraded on
the way; ``degraded`` when a model failure turned it extractive; else ``answered``.

``record_stage_spans``: the retrieval (with the query's embedding) and the gate/pack stage of a
finished answer as spans under the current one, placed by the stage timings the answer flow
measured (``observability/genai.py`` draws the tree; the model calls are live spans of the
gateway's). Nothing when the request is not traced.

A multi-turn question (issue 15): ``traced_condense`` runs the condenser under a live
``ragkeel.condense`` span (the model condenser's call is its child) with what it did as
attributes (``names.CONDENSE_*``: condenser, changed, fallback, turns; the last message and the
standalone question as input/output when content is captured). The trace keeps the same
record in ``gateway["condense"]`` (``Condensed.to_dict``: both questions), persisted with the
gateway record as the answer cache's outcome is; its ``question`` is the standalone one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from ragkeel.errors import RagkeelError
from ragkeel.gateway.base import ChatMessage
from ragkeel.generation.answer import Answer
from ragkeel.generation.condense import Condensed
from ragkeel.generation.safety import mask_canaries
from ragkeel.observability import genai, names, tracing
from ragkeel.observability.trace import (
    Outcome,
    PromptRecord,
    RetrievedChunk,
    Trace,
)
from ragkeel.tokens import RegexTokenCounter

INTERNAL_ERROR = "INTERNAL_ERROR"  # the code of a failure that is not a RagkeelError


def outcome_of(answer: Answer) -> Outcome:
    if answer.mode == "cannot_answer":
        return "cannot_answer"
    return "degraded" if answer.degraded else "answered"


def trace_from_answer(answer: Answer, *, route: str, keep_prompt_text: bool) -> Trace:
    return Trace(
        route=route,
        question=answer.question,
        outcome=outcome_of(answer),
        mode=answer.mode,
        model=answer.model,
        template_version=answer.template_version,
        grounded=answer.grounded,
        input_tokens=answer.usage.prompt_tokens,
        output_tokens=answer.usage.completion_tokens,
        cost=answer.cost,
        latency_ms=dict(answer.latency_ms),
        retrieved=tuple(RetrievedChunk.of(h) for h in answer.hits),
        gate=answer.gate,
        prompt=_prompt(answer, keep_prompt_text),
        output=answer.text,
        citations=answer.citations,
        degraded_reason=answer.degraded_reason,
        degraded_detail=answer.degraded_detail,
        tenant=answer.tenant,
        gateway={
            **(answer.gateway or {}),
            "served_by": answer.served_by,
            **_cache(answer),
            **_rerank(answer),
            **({"condense": answer.condensed.to_dict()} if answer.condensed else {}),
        },
    )


def _cache(answer: Answer) -> dict[str, object]:
    """The answer cache's outcome (issue 14) beside what the gateway did (``"cache"`` in the
    trace's ``gateway`` record, persisted with it: a hit is the gateway call that did not
    happen); nothing without a cache."""
    c = answer.cache
    if c is None:
        return {}
    fields = ("decision", "kind", "stored", "skip", "age_s", "similarity")
    return {"cache": {f: getattr(c, f) for f in fields if getattr(c, f) is not None}}


def _rerank(answer: Answer) -> dict[str, object]:
    """What the conditional reranking did (issue 15) beside the gateway's record (``"rerank"``:
    decision, reason, margin, error, candidates, latency, its own attempts and decisions);
    nothing without a reranker."""
    return {} if answer.rerank is None else {"rerank": asdict(answer.rerank)}


def trace_from_error(
    question: str,
    error: BaseException,
    *,
    route: str,
    latency_ms: float,
    tenant: str | None = None,
) -> Trace:
    """A request that failed before it had an answer; the code is the error's stable ``code``
    (``INTERNAL_ERROR`` for anything that is not a ``RagkeelError``). ``tenant``: whose request
    it was (its trace is read back by that tenant only, issue 11)."""
    code = error.code if isinstance(error, RagkeelError) else INTERNAL_ERROR
    message = str(error) or type(error).__name__
    return Trace(
        route=route,
        question=question,
        outcome="error",
        error_code=code,
        error_message=message,
        latency_ms={names.STAGE_TOTAL: round(latency_ms, 3)},
        tenant=tenant,
    )


def render_prompt(messages: tuple[ChatMessage, ...]) -> str:
    """The messages as one text (what is hashed and kept): ``[role]`` then the content."""
    return "\n\n".join(f"[{m.role}]\n{m.content}" for m in messages)


def _prompt(answer: Answer, keep_text: bool) -> PromptRecord | None:
    if not answer.prompt:
        return None  # no model was called (gate refusal, extractive mode)
    text = mask_canaries(render_prompt(answer.prompt))  # the stored text, and what is hashed
    tokens = answer.usage.prompt_tokens or RegexTokenCounter().count(text)
    return PromptRecord.of(text, tokens=tokens, keep_text=keep_text)


def record_stage_spans(answer: Answer, started_ns: int) -> None:
    """``answer``'s stages as finished spans; ``started_ns``: when its flow started (Unix ns)."""
    span = tracing.current()
    if not span.recording:
        return
    content, ms = span.capture_content, answer.latency_ms

    def at(offset_ms: float) -> int:
        return started_ns + int(offset_ms * 1_000_000)

    retrieved = ms.get(names.STAGE_RETRIEVE, 0.0)
    attrs = genai.retrieval_attributes(answer.question, answer.hits, content=content)
    retrieval = span.record(names.span_of(names.STAGE_RETRIEVE), started_ns, at(retrieved), attrs)
    if names.STAGE_EMBED in ms:
        attrs = genai.embedding_attributes(answer.question, content=content)
        end = at(ms[names.STAGE_EMBED])
        retrieval.record(names.span_of(names.STAGE_EMBED), started_ns, end, attrs)
    attrs = genai.pack_attributes(
        answer.gate, answer.template_version, answer.usage.prompt_tokens or None
    )
    gated = retrieved + ms.get(names.STAGE_GATE, 0.0)
    if names.STAGE_PACK in ms:  # the gate's decision and the packing that followed it
        end = at(gated + ms[names.STAGE_PACK])
        span.record(names.span_of(names.STAGE_PACK), at(retrieved), end, attrs)
    else:  # refused at the gate: nothing was packed
        span.record(names.SPAN_GATE, at(retrieved), at(gated), attrs)


def traced_condense(condense: Callable[[], Condensed]) -> Condensed:
    """``condense()`` under a live ``ragkeel.condense`` span when the request is traced (see
    the module docstring); just ``condense()`` when it is not."""
    parent = tracing.current()
    if not parent.recording:
        return condense()
    span = parent.child(names.span_of(names.STAGE_CONDENSE), {names.OI_SPAN_KIND: names.KIND_CHAIN})
    try:
        with tracing.active(span):
            condensed = condense()
    except BaseException as exc:
        span.end(error=getattr(exc, "code", None) or type(exc).__name__)
        raise
    attrs: dict[str, tracing.SpanValue] = {
        names.CONDENSE_CONDENSER: condensed.condenser,
        names.CONDENSE_CHANGED: condensed.changed,
        names.CONDENSE_TURNS: condensed.turns,
    }
    if condensed.fallback is not None:
        attrs[names.CONDENSE_FALLBACK] = condensed.fallback
    if span.capture_content:
        attrs[names.INPUT_VALUE] = condensed.original
        attrs[names.OUTPUT_VALUE] = condensed.question
    span.set(attrs)
    span.end()
    return condensed

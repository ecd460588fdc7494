"""The attributes of ragkeel's spans, in the conventions trace backends already read: the
OpenTelemetry GenAI semantic conventions (``gen_ai.*``) and OpenInference (Arize Phoenix:
``openinference.span.kind``, ``llm.*``, ``retrieval.documents.*``, ``input.value``...), plus
``ragkeel.*`` for what neither names (cost, rung, gate, tenant, trace id). Names: ``names.py``.

Pure functions from plain values (no gateway or generation types: this is the infra layer);
texts (question, documents, prompt, answer) only when ``content`` is true
(``observability.otlp.capture_content``).

One request's spans (``tracing.py`` says who records which):

    <root>  CHAIN  ragkeel.route, outcome, tenant, cost, grounded, degraded reason, trace id,
      |            served by, rung, attempts, total latency,
      |            gateway decisions (also as span events, and each attempt refused without a
      |            call, e.g. by an open breaker), the question and the answer
      +- ragkeel.retrieve  RETRIEVER  retrieval.documents.{i}.document.id / score / content (the
      |    |           chunk; its document, ranks and per-retriever scores stay in the trace store)
      |    +- ragkeel.embed  EMBEDDING  the query
      +- rerank {deployment}  RERANKER  one per rerank attempt, when the fused ranking was
      |          ambiguous (issue 15; live, during the retrieval): reranker.model_name / top_k,
      |          documents sent, outcome
      +- ragkeel.pack  CHAIN  the gate's decision and thresholds, the prompt's template and size
      +- chat {model}  LLM  one per gateway attempt that reached a provider: gen_ai.* and llm.*
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ragkeel.observability import names, tracing
from ragkeel.observability.trace import Trace, gate_pairs
from ragkeel.observability.tracing import SpanValue
from ragkeel.types import GateDecision, SearchHit

Message = tuple[str, str]  # (role, content)
# on the gate/pack and LLM spans, not repeated on the root (fewer attributes: less to export)
_NOT_ON_ROOT = ("gen_ai.", "ragkeel.gate.", "ragkeel.prompt.")


def annotate_request(trace: Trace) -> None:
    """Put the facts of the request's finished ``trace`` on the current (root) span, and its
    gateway decisions as span events: the edges call it where they record the trace."""
    span = tracing.current()
    if not span.recording:
        return
    span.set(request_attributes(trace, content=span.capture_content))
    for event in decision_events(trace):
        span.event(names.GATEWAY_DECISION_EVENT, event)
    for event in rejected_events(trace):  # refused without a call: no LLM span of their own
        span.event(names.GATEWAY_REJECTED_EVENT, event)


def request_attributes(trace: Trace, *, content: bool) -> dict[str, SpanValue]:
    """The root span's attributes from the request's finished trace. The ``gen_ai.*`` facts
    stay on the attempt spans: a backend that sums GenAI usage over spans counts them once."""
    attrs: dict[str, SpanValue] = {
        k: v for k, v in trace.attributes().items() if not k.startswith(_NOT_ON_ROOT)
    }
    attrs[names.TRACE_ID] = trace.id
    if trace.model:
        attrs[names.LLM_MODEL_NAME] = trace.model
    decisions = _decisions(trace.gateway)
    if decisions:
        attrs[names.GATEWAY_DECISIONS] = [f"{p}: {r}" for p, r in decisions]
    if trace.tenant:
        attrs[names.USER_ID] = trace.tenant  # Phoenix and Langfuse group by it
    if content:
        attrs[names.INPUT_VALUE] = trace.question
        if trace.output:
            attrs[names.OUTPUT_VALUE] = trace.output
    return attrs


def decision_events(trace: Trace) -> list[dict[str, SpanValue]]:
    """One span event's attributes per gateway decision (router, budget, breaker, retry...)."""
    return [
        {names.DECISION_POLICY: p, names.DECISION_REASON: r} for p, r in _decisions(trace.gateway)
    ]


def rejected_events(trace: Trace) -> list[dict[str, SpanValue]]:
    """One span event's attributes per attempt refused without a call (an open breaker, a
    cool-down, the budget): the deployment and the refusal's code."""
    attempts = (trace.gateway or {}).get("attempts") or ()
    return [
        {names.GATEWAY_DEPLOYMENT: str(a["deployment"]), names.ERROR_TYPE: str(a["code"])}
        for a in attempts
        if a.get("outcome") == "rejected"
    ]


def root_attributes(route: str, *, kind: str = names.KIND_CHAIN) -> dict[str, SpanValue]:
    return {names.OI_SPAN_KIND: kind, names.ROUTE: route}


def retrieval_attributes(
    question: str, hits: Sequence[SearchHit], *, content: bool
) -> dict[str, SpanValue]:
    attrs: dict[str, SpanValue] = {
        names.OI_SPAN_KIND: names.KIND_RETRIEVER,
        names.RETRIEVAL_HITS: len(hits),
    }
    if content:
        attrs[names.INPUT_VALUE] = question
    for i, hit in enumerate(hits):
        prefix = f"{names.RETRIEVAL_DOCUMENTS}.{i}."
        attrs[prefix + names.DOCUMENT_ID] = hit.chunk.id
        attrs[prefix + names.DOCUMENT_SCORE] = hit.score
        if content:
            attrs[prefix + names.DOCUMENT_CONTENT] = hit.chunk.text
    return attrs


def embedding_attributes(question: str, *, content: bool) -> dict[str, SpanValue]:
    attrs: dict[str, SpanValue] = {names.OI_SPAN_KIND: names.KIND_EMBEDDING}
    if content:
        attrs[names.EMBEDDING_TEXT] = question
    return attrs


def pack_attributes(
    gate: GateDecision | None, template_version: str | None, prompt_tokens: int | None
) -> dict[str, SpanValue]:
    pairs: list[tuple[str, SpanValue | None]] = [
        (names.OI_SPAN_KIND, names.KIND_CHAIN),
        *gate_pairs(gate),
        (names.PROMPT_TEMPLATE_VERSION, template_version),
        (names.PROMPT_TOKENS, prompt_tokens),
    ]
    return {k: v for k, v in pairs if v is not None}


def attempt_attributes(
    *,
    deployment: str,
    model: str,
    provider: str,
    messages: Sequence[Message],
    max_tokens: int | None,
    temperature: float | None,
    content: bool,
) -> dict[str, SpanValue]:
    """A gateway attempt's span, when it starts (GenAI client span + OpenInference LLM)."""
    params = {"max_tokens": max_tokens, "temperature": temperature}
    attrs: dict[str, SpanValue] = {
        names.OI_SPAN_KIND: names.KIND_LLM,
        names.GEN_AI_OPERATION_NAME: names.OPERATION_CHAT,
        names.GEN_AI_REQUEST_MODEL: model,
        names.GEN_AI_PROVIDER_NAME: provider,
        names.LLM_MODEL_NAME: model,
        names.LLM_PROVIDER: provider,
        names.LLM_INVOCATION_PARAMETERS: json.dumps({k: v for k, v in params.items() if v}),
        names.GATEWAY_DEPLOYMENT: deployment,
    }
    if max_tokens is not None:
        attrs[names.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    if temperature is not None:
        attrs[names.GEN_AI_REQUEST_TEMPERATURE] = temperature
    if content:
        attrs[names.INPUT_VALUE] = json.dumps([{"role": r, "content": c} for r, c in messages])
        attrs[names.INPUT_MIME_TYPE] = "application/json"
        for i, (role, text) in enumerate(messages):
            prefix = f"{names.LLM_INPUT_MESSAGES}.{i}."
            attrs[prefix + names.MESSAGE_ROLE] = role
            attrs[prefix + names.MESSAGE_CONTENT] = text
    return attrs


def rerank_attributes(
    *, deployment: str, provider: str, query: str, documents: int, top_n: int | None, content: bool
) -> dict[str, SpanValue]:
    """A rerank attempt's span, when it starts (OpenInference RERANKER)."""
    attrs: dict[str, SpanValue] = {
        names.OI_SPAN_KIND: names.KIND_RERANKER,
        names.RERANKER_MODEL_NAME: deployment,
        names.GEN_AI_PROVIDER_NAME: provider,
        names.GATEWAY_DEPLOYMENT: deployment,
        names.RERANK_DOCUMENTS: documents,
    }
    if top_n is not None:
        attrs[names.RERANKER_TOP_K] = top_n
    if content:
        attrs[names.RERANKER_QUERY] = query
    return attrs


def attempt_result(
    *,
    outcome: str,
    input_tokens: int,
    output_tokens: int,
    cost: float,
    finish_reason: str | None,
    response_model: str | None,
    output: str | None,
) -> dict[str, SpanValue]:
    """A gateway attempt's span, when it ends: usage (both conventions), cost, finish reason
    and, with content captured, the text (``output``; None: not captured)."""
    attrs: dict[str, SpanValue] = {
        names.GATEWAY_OUTCOME: outcome,
        names.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
        names.GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
        names.LLM_TOKEN_COUNT_PROMPT: input_tokens,
        names.LLM_TOKEN_COUNT_COMPLETION: output_tokens,
        names.LLM_TOKEN_COUNT_TOTAL: input_tokens + output_tokens,
        names.USAGE_COST: cost,
    }
    if finish_reason is not None:
        attrs[names.GEN_AI_RESPONSE_FINISH_REASONS] = [finish_reason]
    if response_model:
        attrs[names.GEN_AI_RESPONSE_MODEL] = response_model
    if output is not None:
        attrs[names.OUTPUT_VALUE] = output
        prefix = f"{names.LLM_OUTPUT_MESSAGES}.0."
        attrs[prefix + names.MESSAGE_ROLE] = "assistant"
        attrs[prefix + names.MESSAGE_CONTENT] = output
    return attrs


def _decisions(gateway: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if not gateway:
        return []
    return [(str(d["policy"]), str(d["reason"])) for d in gateway.get("decisions") or ()]

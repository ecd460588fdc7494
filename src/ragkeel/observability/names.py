"""Span and attribute names, in one place.

Where the OpenTelemetry GenAI semantic conventions name a thing, that name is used as is
(https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/, status: development):
model, operation, token usage, input/output messages, and the general ``error.type``. What they
do not cover (the route, the outcome, retrieval, the answer gate, the prompt template, cost)
lives under ``ragkeel.``. ``Trace.attributes()`` uses these names, so a trace reads like the
span an OpenTelemetry exporter would send.
"""

from __future__ import annotations

from typing import Final

# -- OpenTelemetry (GenAI and general) -------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"  # string array
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
ERROR_TYPE: Final = "error.type"  # our stable error code (RagkeelError.code)
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
HTTP_ROUTE: Final = "http.route"
URL_PATH: Final = "url.path"
SERVICE_NAME: Final = "service.name"  # resource attribute

OPERATION_CHAT: Final = "chat"  # the value of gen_ai.operation.name for a model call
# gen_ai.provider.name (semconv 1.37+; it replaced gen_ai.system) for ``DeploymentSettings.
# provider`` values; the local GGUF model is not in the well-known list, so it is named here
PROVIDER_NAMES: Final = {"openai": "openai", "anthropic": "anthropic"}
PROVIDER_LOCAL: Final = "ragkeel.local"

# -- OpenInference (what Arize Phoenix reads: github.com/Arize-ai/openinference, spec/) ----------
OI_SPAN_KIND: Final = "openinference.span.kind"
OI_PROJECT_NAME: Final = "openinference.project.name"  # resource attribute: Phoenix's project
KIND_CHAIN: Final = "CHAIN"  # the request, the gate/pack step
KIND_RETRIEVER: Final = "RETRIEVER"
KIND_EMBEDDING: Final = "EMBEDDING"
KIND_LLM: Final = "LLM"
KIND_RERANKER: Final = "RERANKER"  # a rerank call (issue 15): reranker.* attributes
INPUT_VALUE: Final = "input.value"
INPUT_MIME_TYPE: Final = "input.mime_type"
OUTPUT_VALUE: Final = "output.value"
OUTPUT_MIME_TYPE: Final = "output.mime_type"
LLM_MODEL_NAME: Final = "llm.model_name"
LLM_PROVIDER: Final = "llm.provider"
LLM_INVOCATION_PARAMETERS: Final = "llm.invocation_parameters"  # JSON
LLM_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL: Final = "llm.token_count.total"
LLM_INPUT_MESSAGES: Final = "llm.input_messages"  # .{i}.message.role / .content
LLM_OUTPUT_MESSAGES: Final = "llm.output_messages"
MESSAGE_ROLE: Final = "message.role"
MESSAGE_CONTENT: Final = "message.content"
RETRIEVAL_DOCUMENTS: Final = "retrieval.documents"  # .{i}.document.id / .score / .content
DOCUMENT_ID: Final = "document.id"
DOCUMENT_SCORE: Final = "document.score"
DOCUMENT_CONTENT: Final = "document.content"
DOCUMENT_METADATA: Final = "document.metadata"  # JSON
EMBEDDING_MODEL_NAME: Final = "embedding.model_name"
RERANKER_MODEL_NAME: Final = "reranker.model_name"
RERANKER_QUERY: Final = "reranker.query"  # with content captured only
RERANKER_TOP_K: Final = "reranker.top_k"
EMBEDDING_TEXT: Final = "embedding.embeddings.0.embedding.text"  # the query (one text)
SESSION_ID: Final = "session.id"
USER_ID: Final = "user.id"

# -- ragkeel: the request ----------------------------------------------------------------------
ROUTE: Final = "ragkeel.route"
OUTCOME: Final = "ragkeel.outcome"
QUESTION: Final = "ragkeel.question"
ANSWER_MODE: Final = "ragkeel.answer.mode"
ANSWER_GROUNDED: Final = "ragkeel.answer.grounded"
ANSWER_DEGRADED_REASON: Final = "ragkeel.answer.degraded_reason"
ANSWER_CITATIONS: Final = "ragkeel.answer.citations"
PROMPT_TEMPLATE_VERSION: Final = "ragkeel.prompt.template_version"
PROMPT_SHA256: Final = "ragkeel.prompt.sha256"
PROMPT_CHARS: Final = "ragkeel.prompt.chars"
PROMPT_TOKENS: Final = "ragkeel.prompt.tokens"
USAGE_COST: Final = "ragkeel.usage.cost"  # no OpenTelemetry name for cost yet
TENANT: Final = "ragkeel.tenant"
GATEWAY_SERVED_BY: Final = "ragkeel.gateway.served_by"  # the deployment (or rung) that answered
GATEWAY_RUNG: Final = "ragkeel.gateway.rung"  # 0 = first choice; see Answer.rung
GATEWAY_ATTEMPTS: Final = "ragkeel.gateway.attempts"
LATENCY_TOTAL_MS: Final = "ragkeel.latency.total_ms"
EVAL_CASE_ID: Final = "ragkeel.eval.case_id"  # an evaluation case's root span
TRACE_ID: Final = "ragkeel.trace.id"  # the trace store's id (``ragkeel trace ID``)
GATEWAY_DEPLOYMENT: Final = "ragkeel.gateway.deployment"  # the deployment an attempt went to
GATEWAY_OUTCOME: Final = "ragkeel.gateway.outcome"  # an attempt's: ok, error, interrupted
GATEWAY_DECISIONS: Final = "ragkeel.gateway.decisions"  # "policy: reason" strings, in order
GATEWAY_DECISION_EVENT: Final = "ragkeel.gateway.decision"  # a span event per decision
GATEWAY_REJECTED_EVENT: Final = "ragkeel.gateway.rejected"  # an attempt refused without a call
DECISION_POLICY: Final = "ragkeel.decision.policy"
DECISION_REASON: Final = "ragkeel.decision.reason"

# -- ragkeel: retrieval and the gate -----------------------------------------------------------
RETRIEVAL_HITS: Final = "ragkeel.retrieval.hits"
RETRIEVAL_TOP_CHUNK_ID: Final = "ragkeel.retrieval.top_chunk_id"
GATE_PASSED: Final = "ragkeel.gate.passed"
GATE_REASON: Final = "ragkeel.gate.reason"
GATE_TOP_DENSE: Final = "ragkeel.gate.top_dense"
GATE_TOP_KEYWORD: Final = "ragkeel.gate.top_keyword"
GATE_DENSE_THRESHOLD: Final = "ragkeel.gate.dense_threshold"
GATE_KEYWORD_THRESHOLD: Final = "ragkeel.gate.keyword_threshold"
CACHE_DECISION: Final = "ragkeel.cache.decision"  # hit, miss, bypass (issue 14)
CACHE_KIND: Final = "ragkeel.cache.kind"  # exact or semantic (a hit's)
CACHE_STORED: Final = "ragkeel.cache.stored"  # whether the fresh answer was kept
CACHE_SKIP: Final = "ragkeel.cache.skip"  # why it was not: degraded, ungrounded, no_store...
# the conditional reranking (issue 15): applied, skipped or failed (the fused order kept), why
RERANK_DECISION: Final = "ragkeel.rerank.decision"
RERANK_REASON: Final = "ragkeel.rerank.reason"
RERANK_ERROR: Final = "ragkeel.rerank.error"  # the failure's code (decision "failed")
RERANK_DOCUMENTS: Final = "ragkeel.rerank.documents"  # passages sent to the reranker
# a multi-turn question made standalone (issue 15): the trace's gateway["condense"] record
CONDENSE_CONDENSER: Final = "ragkeel.condense.condenser"  # rules or model (what produced it)
CONDENSE_CHANGED: Final = "ragkeel.condense.changed"  # whether the question was rewritten
CONDENSE_FALLBACK: Final = "ragkeel.condense.fallback"  # the model condenser's failure code
CONDENSE_TURNS: Final = "ragkeel.condense.turns"  # earlier turns read
CONDENSE_ORIGINAL: Final = "ragkeel.condense.original"  # the last user message (span content)

# -- OpenTelemetry span names: ``ragkeel.<stage>`` for the answer flow's stages ------------------
SPAN_GATE: Final = "ragkeel.gate"  # a refusal's gate decision (no pack stage followed)
SPAN_ATTEMPT: Final = "chat"  # GenAI: "{gen_ai.operation.name} {gen_ai.request.model}"
SPAN_RERANK: Final = "rerank"  # one per rerank attempt: "rerank {deployment}" (issue 15)
SPAN_CLI_ASK: Final = "ragkeel ask"
SPAN_EVAL_CASE: Final = "ragkeel eval case"
TRACEPARENT: Final = "traceparent"  # the W3C Trace Context header, in and out

# -- routes (the entry point a trace was recorded by) -----------------------------------------
ROUTE_CLI_ASK: Final = "cli.ask"
ROUTE_API_QUERY: Final = "api.query"
ROUTE_API_CHAT: Final = "api.chat"
ROUTE_EVAL_RUN: Final = "eval.run"

# -- stages: keys of a trace's latency map (milliseconds); as spans: ``span_of(stage)`` ------
STAGE_EMBED: Final = "embed"
STAGE_KEYWORD: Final = "keyword"
STAGE_DENSE: Final = "dense"
STAGE_FUSE: Final = "fuse"
STAGE_RERANK: Final = "rerank"  # the reranker's call, when the gate applied it (issue 15)
STAGE_RETRIEVE: Final = "retrieve"  # embed + keyword + dense + fuse + rerank, one wall-clock lap
STAGE_GATE: Final = "gate"  # the answer gate's decision (after retrieve, before pack)
STAGE_PACK: Final = "pack"
STAGE_FIRST_TOKEN: Final = "first_token"  # from the start of the request
STAGE_QUEUE: Final = "queue"  # waiting for a turn on a serialised model (inside "generate")
# reading the prompt into the model (inside "generate", after "queue"; issue 14): what the local
# model's llama.cpp counters measured, with the prompt tokens it did not have to read again
STAGE_PROMPT_EVAL: Final = "prompt_eval"
STAGE_GENERATE: Final = "generate"
STAGE_TOTAL: Final = "total"
STAGE_CACHE: Final = "cache"  # the answer cache's lookup (issue 14; a hit's only stage)
STAGE_CONDENSE: Final = "condense"  # a follow-up made standalone, before retrieval (issue 15)
# ``SearchResult.timings_ms`` (and ``/v1/search``'s ``timings_ms``) keys, per stage: the search
# API's field names, kept as they were published
SEARCH_TIMINGS: Final = {
    STAGE_EMBED: "embed_ms",
    STAGE_KEYWORD: "keyword_ms",
    STAGE_DENSE: "dense_ms",
    STAGE_FUSE: "fusion_ms",
    STAGE_RERANK: "rerank_ms",
    STAGE_TOTAL: "total_ms",
}
# the stages an evaluation report gives percentiles of
OPS_STAGES: Final = (STAGE_RETRIEVE, STAGE_PACK, STAGE_GENERATE, STAGE_FIRST_TOKEN, STAGE_TOTAL)
# the stages of the time to first token, in the flow's order (bench/first_token.py, issue 14)
FIRST_TOKEN_STAGES: Final = (
    STAGE_RETRIEVE,
    STAGE_GATE,
    STAGE_PACK,
    STAGE_QUEUE,
    STAGE_PROMPT_EVAL,
    STAGE_FIRST_TOKEN,
)
STAGES: Final = (
    STAGE_EMBED,
    STAGE_KEYWORD,
    STAGE_DENSE,
    STAGE_FUSE,
    STAGE_RERANK,
    STAGE_RETRIEVE,
    STAGE_GATE,
    STAGE_PACK,
    STAGE_FIRST_TOKEN,
    STAGE_QUEUE,
    STAGE_PROMPT_EVAL,
    STAGE_GENERATE,
    STAGE_TOTAL,
)


def span_of(stage: str) -> str:
    """The OpenTelemetry span name of a stage of the answer flow: ``ragkeel.<stage>``."""
    return f"ragkeel.{stage}"

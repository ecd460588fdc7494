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
ERROR_TYPE: Final = "error.type"  # our stable error code (RagkeelError.code)

OPERATION_CHAT: Final = "chat"  # the value of gen_ai.operation.name for a model call

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

# -- ragkeel: retrieval and the gate -----------------------------------------------------------
RETRIEVAL_HITS: Final = "ragkeel.retrieval.hits"
RETRIEVAL_TOP_CHUNK_ID: Final = "ragkeel.retrieval.top_chunk_id"
GATE_PASSED: Final = "ragkeel.gate.passed"
GATE_REASON: Final = "ragkeel.gate.reason"
GATE_TOP_DENSE: Final = "ragkeel.gate.top_dense"
GATE_TOP_KEYWORD: Final = "ragkeel.gate.top_keyword"
GATE_DENSE_THRESHOLD: Final = "ragkeel.gate.dense_threshold"
GATE_KEYWORD_THRESHOLD: Final = "ragkeel.gate.keyword_threshold"

# -- routes (the entry point a trace was recorded by) -----------------------------------------
ROUTE_CLI_ASK: Final = "cli.ask"
ROUTE_API_QUERY: Final = "api.query"
ROUTE_API_CHAT: Final = "api.chat"
ROUTE_EVAL_RUN: Final = "eval.run"

# -- stages: keys of a trace's latency map (milliseconds); as spans: ``ragkeel.<stage>`` -----
STAGE_EMBED: Final = "embed"
STAGE_KEYWORD: Final = "keyword"
STAGE_DENSE: Final = "dense"
STAGE_FUSE: Final = "fuse"
STAGE_RETRIEVE: Final = "retrieve"  # embed + keyword + dense + fuse, as one wall-clock lap
STAGE_PACK: Final = "pack"
STAGE_FIRST_TOKEN: Final = "first_token"  # from the start of the request
STAGE_QUEUE: Final = "queue"  # waiting for a turn on a serialised model (inside "generate")
STAGE_GENERATE: Final = "generate"
STAGE_TOTAL: Final = "total"
# ``SearchResult.timings_ms`` (and ``/v1/search``'s ``timings_ms``) keys, per stage: the search
# API's field names, kept as they were published
SEARCH_TIMINGS: Final = {
    STAGE_EMBED: "embed_ms",
    STAGE_KEYWORD: "keyword_ms",
    STAGE_DENSE: "dense_ms",
    STAGE_FUSE: "fusion_ms",
    STAGE_TOTAL: "total_ms",
}
# the stages an evaluation report gives percentiles of
OPS_STAGES: Final = (STAGE_RETRIEVE, STAGE_PACK, STAGE_GENERATE, STAGE_FIRST_TOKEN, STAGE_TOTAL)
STAGES: Final = (
    STAGE_EMBED,
    STAGE_KEYWORD,
    STAGE_DENSE,
    STAGE_FUSE,
    STAGE_RETRIEVE,
    STAGE_PACK,
    STAGE_FIRST_TOKEN,
    STAGE_QUEUE,
    STAGE_GENERATE,
    STAGE_TOTAL,
)

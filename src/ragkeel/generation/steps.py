"""The steps of answering one question, each a function with explicit inputs and outputs:

``retrieve`` → ``gate`` → ``pack`` → ``generate`` → ``verify`` → ``finish``

- ``retrieve``: the retriever's ``SearchResult`` (``Retrieved`` bundles it with the question, its
  ``Budget`` and an output schema). ``gate``: ``Gated`` — refuse (below the thresholds: no model
  call), quote (extractive asked, or no model: ``NO_MODEL``) or generate.
- ``pack_extractive`` / ``pack``: the hits in the context budget, counted with the regex counter
  (nothing loads a model) or with the model's tokenizer after the prompt's own overhead, shrunk
  to a request's ``max_tokens`` (``Packed``); ``pack`` cuts them as the policy's ``packing``
  says (whole chunks or the question's sentences, ``context.py``), ``pack_extractive`` keeps
  whole chunks (the extractive answer picks its own sentences).
- ``generate``: streams the model's tokens as they come (yields ``TokenEvent``s, returns
  ``Generated``); a gateway or model-file error is returned as a ``Degradation``; over budget
  before any text, it retries once with half the context.
- ``verify``: the citation check, uncited sentences attributed to the source that supports them
  (never inside a JSON answer). ``extract``: the extractive answer (quoted sentences).
- ``finish``: the ``Answer`` from what the steps returned (an ``Ending`` and the model call).

Only the ``Timer`` (stage laps) and the gateway's ``CallLog`` are mutable, written as the flow
advances; every other value a step takes or returns is frozen. ``answerer.py`` strings the
steps together and decides what a failure degrades to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ragkeel.embeddings.base import Vector
from ragkeel.errors import BudgetExceededError, ChatModelError, ModelError, RagkeelError
from ragkeel.gateway.base import ChatMessage, ChatModel, ChatRequest, ChatStream, Usage
from ragkeel.gateway.calllog import CallLog, recorded, recording
from ragkeel.generation.answer import Answer, AnswerEvent, AnswerMode, TokenEvent, citations_of
from ragkeel.generation.citations import CitationCheck, attribute_uncited, check_answer
from ragkeel.generation.context import (
    WHOLE_CHUNKS,
    CountTokens,
    PackedContext,
    Packing,
    pack_context,
)
from ragkeel.generation.extractive import (
    ExtractedSentence,
    extract_sentences,
    render_extractive,
)
from ragkeel.generation.gate import AnswerGate
from ragkeel.generation.policy import (
    MIN_ANSWER_TOKENS,
    MIN_CONTEXT_BUDGET,
    AnswerPolicy,
    Budget,
    GenerationMode,
)
from ragkeel.generation.templates import REFUSAL_PHRASE, PromptTemplate, load_template
from ragkeel.observability import names
from ragkeel.retrieval.hybrid import HybridRetriever, Mode
from ragkeel.storage.filters import Filter
from ragkeel.tokens import RegexTokenCounter
from ragkeel.types import AccessScope, GateDecision, SearchResult

JSON_TEMPLATE = "answer_json_v1"  # the prompt of answers asked for JSON (an output_schema)
SCHEMA_UNSUPPORTED = "OUTPUT_SCHEMA_UNSUPPORTED"  # degraded: an output_schema, an extractive answer
SCHEMA_UNSUPPORTED_DETAIL = (
    "the extractive answer quotes sentences: it is not JSON for output_schema"
)
REGEX_COUNT: CountTokens = RegexTokenCounter().count
_RETRIEVAL_STAGES = (
    names.STAGE_EMBED,
    names.STAGE_KEYWORD,
    names.STAGE_DENSE,
    names.STAGE_FUSE,
    names.STAGE_RERANK,
)


@dataclass(slots=True)
class Timer:
    """The stage laps of one answer (``latency_ms``), in milliseconds."""

    start: float = field(default_factory=time.perf_counter)
    wall_ns: int = field(default_factory=time.time_ns)  # the start, in Unix ns (for spans)
    last: float = 0.0
    ms: dict[str, float] = field(default_factory=dict)

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.ms[stage] = (now - (self.last or self.start)) * 1000
        self.last = now

    def first_token(self) -> None:
        self.ms.setdefault(names.STAGE_FIRST_TOKEN, (time.perf_counter() - self.start) * 1000)

    def done(self) -> dict[str, float]:
        self.ms[names.STAGE_TOTAL] = (time.perf_counter() - self.start) * 1000
        return {k: round(v, 3) for k, v in self.ms.items()}


@dataclass(frozen=True, slots=True)
class Degradation:
    """Why an answer is not what was asked for: a stable ``code`` and the failure's message."""

    code: str
    detail: str

    def also(self, more: str) -> Degradation:
        return Degradation(self.code, f"{self.detail}; {more}")


@dataclass(frozen=True, slots=True)
class Retrieved:
    """One question with what it may spend and the hits found for it."""

    question: str
    result: SearchResult
    budget: Budget
    schema: Mapping[str, Any] | None = None  # the answer must be JSON valid against it


Route = Literal["refuse", "extractive", "generate"]


@dataclass(frozen=True, slots=True)
class Gated:
    decision: GateDecision
    route: Route
    degraded: Degradation | None = None  # NO_MODEL: generative asked, no model configured


@dataclass(frozen=True, slots=True)
class Packed:
    context: PackedContext
    template: PromptTemplate
    schema_text: str  # the output schema as the prompt shows it ("" for none)
    answer_tokens: int  # the completion's max_tokens
    note: str | None = None  # a budget decision for the call log (the context was shrunk)
    packing: Packing = WHOLE_CHUNKS  # how it was cut (the over-budget retry cuts the same way)


@dataclass(frozen=True, slots=True)
class Generated:
    """What the model call returned: the text streamed (void when ``degraded``), the context
    its prompt held (half the packed one after an over-budget retry) and what it spent."""

    text: str
    context: PackedContext
    prompt: tuple[ChatMessage, ...]
    usage: Usage
    model: str
    template_version: str
    degraded: Degradation | None = None


@dataclass(frozen=True, slots=True)
class Verified:
    text: str  # with the attributed [n] markers, if any
    check: CitationCheck
    inferred: tuple[int, ...] = ()  # citation numbers added by attribute_uncited


@dataclass(frozen=True, slots=True)
class Extracted:
    sentences: tuple[ExtractedSentence, ...]
    verified: Verified
    degraded: Degradation | None  # the degradation before, plus the broken JSON format if any


@dataclass(frozen=True, slots=True)
class Ending:
    """How an answer ends: its text and mode, the context and check its citations come from
    (none for a refusal), and why it is degraded, if it is."""

    text: str
    mode: AnswerMode
    context: PackedContext | None = None
    verified: Verified | None = None
    degraded: Degradation | None = None

    @classmethod
    def refusal(cls, degraded: Degradation | None = None) -> Ending:
        return cls(REFUSAL_PHRASE, "cannot_answer", degraded=degraded)


def retrieve(
    retriever: HybridRetriever,
    question: str,
    *,
    k: int,
    mode: Mode,
    flt: Filter | None,
    timer: Timer,
    scope: AccessScope | None = None,
    vector: Vector | None = None,
) -> SearchResult:
    """The hits for ``question`` that ``scope`` may see (None: the default tenant, every
    principal); the retrieval's own stage timings land in ``timer``. ``vector``: the
    question's embedding if already computed (the answer cache's semantic lookup)."""
    result = retriever.search(question, k, mode=mode, flt=flt, scope=scope, vector=vector)
    timer.lap(names.STAGE_RETRIEVE)
    for stage in _RETRIEVAL_STAGES:
        if (key := names.SEARCH_TIMINGS[stage]) in result.timings_ms:
            timer.ms[stage] = result.timings_ms[key]
    return result


def gate(
    result: SearchResult, answer_gate: AnswerGate, mode: GenerationMode, *, has_model: bool
) -> Gated:
    """Refuse, quote or generate: the gate's decision first, then the mode and the model."""
    decision = answer_gate.decide(result)
    if not decision.passed:
        return Gated(decision, "refuse")
    if mode == "extractive":
        return Gated(decision, "extractive")
    if not has_model:
        no_model = Degradation("NO_MODEL", "no chat model is configured; answered extractively")
        return Gated(decision, "extractive", no_model)
    return Gated(decision, "generate")


def pack_extractive(retrieved: Retrieved, context_budget: int) -> PackedContext:
    """The context of an extractive answer, counted with the regex counter: counting with the
    model's tokenizer would load a local model (or fail when it is missing)."""
    return pack_context(retrieved.result.hits, REGEX_COUNT, context_budget)


def template_for(default: PromptTemplate, schema: Mapping[str, Any] | None) -> PromptTemplate:
    """The prompt of an answer: the JSON prompt when an output schema is asked."""
    return default if schema is None else load_template(JSON_TEMPLATE)


def pack(
    retrieved: Retrieved,
    template: PromptTemplate,
    policy: AnswerPolicy,
    count_tokens: CountTokens,
) -> Packed:
    """The context for ``template``'s prompt, counted with ``count_tokens`` (the model's
    tokenizer: a missing model raises ``ModelError`` or a ``ChatModelError`` here); the prompt
    and the answer fit the request's ``max_tokens`` (``BudgetExceededError`` if they cannot)."""
    schema = "" if retrieved.schema is None else json.dumps(retrieved.schema, ensure_ascii=False)
    empty = template.render(retrieved.question, "", schema)
    overhead = sum(count_tokens(m.content) for m in empty)
    budget = max(policy.context_budget - overhead, policy.context_budget // 4)
    answer_tokens, note = policy.max_answer_tokens, None
    if retrieved.budget.answer_tokens is not None:  # the request's own completion limit
        answer_tokens = max(1, min(answer_tokens, retrieved.budget.answer_tokens))
    if retrieved.budget.max_tokens is not None:  # prompt + completion must fit max_tokens
        budget, answer_tokens, note = fit_tokens(
            retrieved.budget.max_tokens, overhead, budget, answer_tokens
        )
    context = pack_context(
        retrieved.result.hits,
        count_tokens,
        budget,
        question=retrieved.question,
        packing=policy.packing,
    )
    return Packed(context, template, schema, answer_tokens, note, policy.packing)


def fit_tokens(
    limit: int, overhead: int, budget: int, max_answer_tokens: int
) -> tuple[int, int, str | None]:
    """(context budget, answer tokens, note) so that prompt + completion <= ``limit``."""
    answer_tokens = min(max_answer_tokens, max(MIN_ANSWER_TOKENS, limit // 4))
    room = limit - overhead - answer_tokens
    if room < MIN_CONTEXT_BUDGET // 2:
        raise BudgetExceededError(
            f"max_tokens {limit} leaves no room for a context: the prompt alone takes "
            f"{overhead} tokens and the answer {answer_tokens}",
            hint=f"allow at least {overhead + answer_tokens + MIN_CONTEXT_BUDGET // 2} tokens",
        )
    note = f"context {budget} -> {room} tokens to fit max_tokens {limit}" if room < budget else None
    return min(budget, room), answer_tokens, note


RequestFor = Callable[[tuple[ChatMessage, ...], int], ChatRequest]  # (prompt, max_tokens)


@dataclass(frozen=True, slots=True)
class _Streamed:
    usage: Usage | None
    model: str | None
    error: RagkeelError | None


def generate(
    model: ChatModel,
    retrieved: Retrieved,
    packed: Packed,
    request_for: RequestFor,
    log: CallLog,
    timer: Timer,
) -> Generator[AnswerEvent, None, Generated]:
    """Streams the model's answer to the packed prompt: yields each ``TokenEvent`` as it comes,
    returns ``Generated``. Over budget before any text, once more with half the context."""
    context, parts = packed.context, list[str]()
    usage: Usage | None = None
    name = model.name
    degraded: Degradation | None = None
    prompt: tuple[ChatMessage, ...] = ()
    error: RagkeelError | None = None
    for smaller in (False, True):
        if smaller:  # half of what was packed (not of the budget: it may not have been full)
            half = pack_context(
                retrieved.result.hits,
                model.count_tokens,
                context.tokens // 2,
                question=retrieved.question,
                packing=packed.packing,
            )
            if not half.sources:
                break
            context = half
            log.decide("budget", f"retrying with half the context: {error}")
            degraded = None
        sources = packed.template.format_sources(context)  # numbered, or tagged data (v3)
        prompt = packed.template.render(retrieved.question, sources, packed.schema_text)
        streamed = yield from _stream(
            model, request_for(prompt, packed.answer_tokens), log, timer, parts
        )
        usage, name, error = streamed.usage or usage, streamed.model or name, streamed.error
        if error is not None:
            degraded = Degradation(error.code, str(error))
        retry = isinstance(error, BudgetExceededError) and not parts and not smaller
        if not retry or len(context.sources) <= 1:
            break
    timer.lap(names.STAGE_GENERATE)
    if log.queue_ms:  # waiting for a serialised model's turn (part of "generate")
        timer.ms[names.STAGE_QUEUE] = log.queue_ms
    if log.prompt is not None:  # the model reading the prompt (part of "generate", issue 14)
        timer.ms[names.STAGE_PROMPT_EVAL] = log.prompt.ms
    text = "".join(parts).strip()
    if usage is None and (log.attempts or log.decisions):  # failed behind the gateway: what
        usage = log.usage  # it metered — nothing when a policy refused before any call was sent
    if usage is None:  # failed, unmetered: estimate what was spent
        usage = Usage(sum(model.count_tokens(m.content) for m in prompt), model.count_tokens(text))
    if degraded is None and not text:
        degraded = Degradation("MODEL_EMPTY", f"{model.name} returned an empty answer")
    return Generated(text, context, prompt, usage, name, packed.template.version, degraded)


def _stream(
    model: ChatModel, request: ChatRequest, log: CallLog, timer: Timer, parts: list[str]
) -> Generator[AnswerEvent, None, _Streamed]:
    """One model call: its tokens go to ``parts`` and out as events; a gateway or model-file
    error ends it (returned, not raised). Closed when the consumer goes away."""
    chunks: ChatStream | None = None
    usage: Usage | None = None
    name: str | None = None
    try:  # the gateway records what it does into log, wherever this flow is advanced
        with recording(log):  # a provider may fail here already (e.g. loading)
            chunks = recorded(model.stream(request), log)
        for chunk in chunks:
            if chunk.text_delta:
                timer.first_token()
                parts.append(chunk.text_delta)
                yield TokenEvent(chunk.text_delta)
            usage = chunk.usage or usage
            name = chunk.model or name
    except (ChatModelError, ModelError) as exc:
        return _Streamed(usage, name, exc)
    finally:  # stop generation now if our consumer went away (e.g. a client disconnect)
        if chunks is not None:
            chunks.close()
    return _Streamed(usage, name, None)


def verify(text: str, context: PackedContext, *, min_support: float, json_answer: bool) -> Verified:
    """The citation check of a generated ``text``; an unsupported sentence gets the ``[n]`` of
    the source that supports it (never inside a JSON answer: appending [n] would break it)."""
    check = check_answer(text, context, min_support=min_support)
    if check.refusal or not check.unsupported or json_answer:
        return Verified(text, check)
    text, inferred = attribute_uncited(text, context, min_support=min_support)
    return Verified(text, check_answer(text, context, min_support=min_support), inferred)


def extract(
    retrieved: Retrieved,
    context: PackedContext,
    degraded: Degradation | None,
    *,
    sentences: int,
    min_support: float,
) -> Extracted | None:
    """The extractive answer: up to ``sentences`` quoted sentences (None: nothing to quote).
    Quoted sentences are not JSON: asked for an output schema, the answer is degraded."""
    quoted = extract_sentences(retrieved.question, context, max_sentences=sentences)
    if not quoted:
        return None
    if retrieved.schema is not None:  # the format contract is broken
        if degraded is None:
            degraded = Degradation(SCHEMA_UNSUPPORTED, SCHEMA_UNSUPPORTED_DETAIL)
        else:
            degraded = degraded.also(SCHEMA_UNSUPPORTED_DETAIL)
    text = render_extractive(quoted)
    check = check_answer(text, context, min_support=min_support)
    return Extracted(tuple(quoted), Verified(text, check), degraded)


def finish(
    retrieved: Retrieved,
    decision: GateDecision,
    ending: Ending,
    call: Generated | None,
    log: CallLog,
    *,
    cost: float,
    latency_ms: Mapping[str, float],
) -> Answer:
    """The ``Answer``: the ending's text, citations and check, the model call's prompt and
    usage (``call``: None when no model was called), the gateway's log."""
    check = ending.verified.check if ending.verified else None
    citations = citations_of(ending.context, check) if ending.context and check else ()
    model = call.model if call else None
    return Answer(
        question=retrieved.question,
        text=ending.text,
        mode=ending.mode,
        citations=citations,
        grounded=check.grounded if check else True,
        degraded=ending.degraded is not None,
        degraded_reason=ending.degraded.code if ending.degraded else None,
        degraded_detail=ending.degraded.detail if ending.degraded else None,
        usage=call.usage if call else Usage(),
        cost=cost,
        latency_ms=latency_ms,
        template_version=call.template_version if call else None,
        model=model,
        invalid_citations=check.invalid if check else (),
        unsupported_sentences=check.unsupported if check else (),
        inferred_citations=ending.verified.inferred if ending.verified else (),
        hits=retrieved.result.hits,
        rerank=retrieved.result.rerank,
        gate=decision,
        prompt=call.prompt if call else (),
        served_by=model if ending.mode == "generative" else ending.mode,
        gateway=log.to_dict() if log.attempts or log.decisions else None,
        tenant=retrieved.budget.tenant,
    )

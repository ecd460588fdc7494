"""``Answerer``: the question flow as a stream of events.

retrieve (hybrid) → gate (below threshold: "cannot answer", no model call) → pack the hits into
the token budget → render the versioned prompt → stream the model → validate citations → Answer.

Degradation: with no model, or when the model raises a gateway error (timeout, unavailable,
error) or a model-file error before or during streaming, or returns nothing, the answer is the
extractive one, marked ``degraded`` with the failure's code. An answer asked for JSON (an
``output_schema``) that ends up extractive — the mode asked, or a fallback — is always marked
``degraded`` (``OUTPUT_SCHEMA_UNSUPPORTED``, or the failure's code with the broken format said in
``degraded_detail``): quoted sentences are not JSON. A refusal phrase from the model
becomes ``mode="cannot_answer"``. Errors that cannot be degraded (an empty question, the store)
propagate from ``answer`` and end ``stream`` with a fatal ``ErrorEvent``. See ``answer.py`` for
the event order.

An extractive answer never touches the chat model: its context is packed with the regex token
counter, so ``mode="extractive"`` works with no model installed (and never loads or locks one).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ragkeel.clock import SYSTEM_CLOCK, Clock
from ragkeel.errors import BudgetExceededError, ChatModelError, ModelError, QueryError, RagkeelError
from ragkeel.gateway.base import (
    ChatMessage,
    ChatModel,
    ChatRequest,
    ChatStream,
    RoutingHints,
    Usage,
)
from ragkeel.gateway.calllog import CallLog, recorded, recording
from ragkeel.generation.answer import (
    Answer,
    AnswerEvent,
    AnswerMode,
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    RetrievalEvent,
    TokenEvent,
    citations_of,
)
from ragkeel.generation.citations import (
    DEFAULT_MIN_SUPPORT,
    CitationCheck,
    attribute_uncited,
    check_answer,
)
from ragkeel.generation.context import (
    DEFAULT_CONTEXT_BUDGET,
    CountTokens,
    PackedContext,
    pack_context,
)
from ragkeel.generation.extractive import DEFAULT_SENTENCES, extract_sentences, render_extractive
from ragkeel.generation.gate import DEFAULT_DENSE_THRESHOLD, AnswerGate
from ragkeel.generation.templates import (
    DEFAULT_TEMPLATE,
    REFUSAL_PHRASE,
    PromptTemplate,
    load_template,
)
from ragkeel.observability import names
from ragkeel.retrieval.hybrid import HybridRetriever, Mode
from ragkeel.storage.filters import Filter
from ragkeel.tokens import RegexTokenCounter
from ragkeel.types import Citation, GateDecision, SearchResult

GenerationMode = Literal["generative", "extractive"]
JSON_TEMPLATE = "answer_json_v1"  # the prompt of answers asked for JSON (an output_schema)
SCHEMA_UNSUPPORTED = "OUTPUT_SCHEMA_UNSUPPORTED"  # degraded: an output_schema, an extractive answer
SCHEMA_UNSUPPORTED_DETAIL = (
    "the extractive answer quotes sentences: it is not JSON for output_schema"
)
_REGEX_COUNT: CountTokens = RegexTokenCounter().count
MIN_CONTEXT_BUDGET = 128
_RETRIEVAL_STAGES = (names.STAGE_EMBED, names.STAGE_KEYWORD, names.STAGE_DENSE, names.STAGE_FUSE)


@dataclass(slots=True)
class _Clock:
    start: float = field(default_factory=time.perf_counter)
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
class Budget:
    """What one request may spend: ``max_cost`` in USD across all model calls, ``max_tokens``
    prompt plus completion (None: no limit). ``tenant`` keys the gateway's limits and ledger."""

    tenant: str | None = None
    max_cost: float | None = None
    max_tokens: int | None = None


NO_BUDGET = Budget()
MIN_ANSWER_TOKENS = 64


@dataclass(slots=True)
class _Run:
    """State of one question as it moves through the flow."""

    question: str
    result: SearchResult
    gate: GateDecision
    clock: _Clock
    budget: Budget = NO_BUDGET
    log: CallLog = field(default_factory=CallLog)
    schema: Mapping[str, Any] | None = None  # the answer must be JSON valid against it
    usage: Usage | None = None
    model: str | None = None
    template_version: str | None = None
    prompt: tuple[ChatMessage, ...] = ()
    degraded: tuple[str, str] | None = None  # (code, message)
    error: RagkeelError | None = None  # the model call's failure, if any
    inferred: tuple[int, ...] = ()  # citation numbers added by attribute_uncited


class Answerer:
    def __init__(
        self,
        retriever: HybridRetriever,
        model: ChatModel | None,
        *,
        k: int = 8,
        gate_threshold: float = DEFAULT_DENSE_THRESHOLD,
        gate_keyword_threshold: float | None = None,
        context_budget: int = DEFAULT_CONTEXT_BUDGET,
        max_answer_tokens: int = 256,
        template_version: str = DEFAULT_TEMPLATE,
        mode: GenerationMode = "generative",
        model_timeout_s: float | None = 60.0,
        min_support: float = DEFAULT_MIN_SUPPORT,
        extractive_sentences: int = DEFAULT_SENTENCES,
        cost_of: Callable[[str, Usage], float] | None = None,
        deadline_s: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
        default_max_tokens: int | None = None,
        retrieval_mode: Mode = "hybrid",
    ) -> None:
        if k < 1 or max_answer_tokens < 1 or extractive_sentences < 1:
            raise ValueError("k, max_answer_tokens and extractive_sentences must be at least 1")
        if context_budget < MIN_CONTEXT_BUDGET:
            raise ValueError(f"context_budget must be at least {MIN_CONTEXT_BUDGET} tokens")
        if mode not in ("generative", "extractive"):
            raise ValueError(f"mode must be 'generative' or 'extractive', got {mode!r}")
        self.retriever = retriever
        self.model = model
        self.k = k
        self.gate = AnswerGate(gate_threshold, gate_keyword_threshold)
        self.context_budget = context_budget
        self.max_answer_tokens = max_answer_tokens
        self.template = load_template(template_version)
        self.mode: GenerationMode = mode
        self.model_timeout_s = model_timeout_s
        self.min_support = min_support
        self.extractive_sentences = extractive_sentences
        self.cost_of = cost_of  # (model name, usage) -> USD; None: every model is free (local)
        self.deadline_s = deadline_s  # the whole model call incl. retries and fallbacks
        self.default_max_tokens = default_max_tokens  # prompt + answer, unless the request says
        self.retrieval_mode: Mode = retrieval_mode
        self._time = clock

    def answer(
        self,
        question: str,
        *,
        collection: str | None = None,
        flt: Filter | None = None,
        mode: GenerationMode | None = None,
        budget: Budget = NO_BUDGET,
        output_schema: Mapping[str, Any] | None = None,
        k: int | None = None,
    ) -> Answer:
        """The final answer. ``output_schema``: reply with one JSON value valid against it
        (prompt ``answer_json_v1``, schema-constrained decoding where the model allows);
        ``k``: chunks to retrieve for this question (default: the answerer's)."""
        scope = _scope(collection, flt)
        events = self._events(question, scope, mode or self.mode, budget, output_schema, k)
        for event in events:
            if isinstance(event, DoneEvent):
                return event.answer
        raise AssertionError("the answer flow ended without an answer")  # pragma: no cover

    def stream(
        self,
        question: str,
        *,
        collection: str | None = None,
        flt: Filter | None = None,
        mode: GenerationMode | None = None,
        budget: Budget = NO_BUDGET,
        output_schema: Mapping[str, Any] | None = None,
        k: int | None = None,
    ) -> Generator[AnswerEvent, None, None]:
        """The events of answering ``question`` (see ``answer.py``); ``close()`` it to cancel.
        Everything that may change per question is an argument here (nothing is set on the
        shared answerer)."""
        try:
            scope = _scope(collection, flt)
            if k is not None and k < 1:
                raise QueryError(f"k must be at least 1, got {k}", hint="ask for 1 or more chunks")
            yield from self._events(question, scope, mode or self.mode, budget, output_schema, k)
        except RagkeelError as exc:
            yield ErrorEvent.ending(exc)

    def _events(
        self,
        question: str,
        flt: Filter | None,
        mode: GenerationMode,
        budget: Budget,
        schema: Mapping[str, Any] | None = None,
        k: int | None = None,
    ) -> Iterator[AnswerEvent]:
        clock = _Clock()
        result = self.retriever.search(question, k or self.k, mode=self.retrieval_mode, flt=flt)
        clock.lap(names.STAGE_RETRIEVE)
        for stage in _RETRIEVAL_STAGES:
            if (key := names.SEARCH_TIMINGS[stage]) in result.timings_ms:
                clock.ms[stage] = result.timings_ms[key]
        if budget.max_tokens is None and self.default_max_tokens is not None:
            budget = dataclasses.replace(budget, max_tokens=self.default_max_tokens)
        run = _Run(question, result, self.gate.decide(result), clock, budget, schema=schema)
        yield RetrievalEvent(result.hits, result.confidence, run.gate)
        if not run.gate.passed:
            yield from self._refuse(run)
        elif mode == "extractive" or self.model is None:  # no model call, so no model tokenizer:
            # counting with it would load a local model (or fail when it is missing)
            context = pack_context(result.hits, _REGEX_COUNT, self.context_budget)
            clock.lap(names.STAGE_PACK)
            if mode != "extractive":
                run.degraded = ("NO_MODEL", "no chat model is configured; answered extractively")
            yield from self._extractive(run, context)
        else:
            yield from self._generate(run, self.model)

    def _generate(self, run: _Run, model: ChatModel) -> Iterator[AnswerEvent]:
        try:  # counting with the model's tokenizer loads it: a missing model fails here
            template, schema = self._template_for(run)
            empty = template.render(run.question, "", schema)
            overhead = sum(model.count_tokens(m.content) for m in empty)
            budget = max(self.context_budget - overhead, self.context_budget // 4)
            answer_tokens = self.max_answer_tokens
            if run.budget.max_tokens is not None:  # prompt + completion must fit max_tokens
                budget, answer_tokens = self._fit_tokens(run, overhead, budget)
            context = pack_context(run.result.hits, model.count_tokens, budget)
        except (ChatModelError, ModelError) as exc:
            run.degraded = (exc.code, str(exc))
            context = pack_context(run.result.hits, _REGEX_COUNT, self.context_budget)
            run.clock.lap(names.STAGE_PACK)
            yield ErrorEvent(*run.degraded, fatal=False)
            yield from self._extractive(run, context)
            return
        run.clock.lap(names.STAGE_PACK)
        if not context.sources:
            yield from self._refuse(run)
            return
        run.model, run.template_version = model.name, template.version
        parts: list[str] = []
        for smaller in (False, True):  # over budget before any text: once more, half the context
            if smaller:  # half of what was packed (not of the budget: it may not have been full)
                half = pack_context(run.result.hits, model.count_tokens, context.tokens // 2)
                if not half.sources:
                    break
                context = half
                run.log.decide("budget", f"retrying with half the context: {run.error}")
                run.degraded = None
            run.prompt = template.render(run.question, context.render(), schema)
            yield from self._call(run, model, self._request(run, answer_tokens), parts)
            retry = isinstance(run.error, BudgetExceededError) and not parts and not smaller
            if not retry or len(context.sources) <= 1:
                break
        run.clock.lap(names.STAGE_GENERATE)
        if run.log.queue_ms:  # waiting for a serialised model's turn (part of "generate")
            run.clock.ms[names.STAGE_QUEUE] = run.log.queue_ms
        text = "".join(parts).strip()
        if run.usage is None and run.log.attempts:  # failed: what the gateway metered
            run.usage = run.log.usage
        if run.usage is None:  # failed, unmetered: estimate what was spent
            run.usage = Usage(
                sum(model.count_tokens(m.content) for m in run.prompt), model.count_tokens(text)
            )
        if run.degraded is None and not text:
            run.degraded = ("MODEL_EMPTY", f"{model.name} returned an empty answer")
        if run.degraded is not None:
            yield ErrorEvent(*run.degraded, fatal=False)
            yield from self._extractive(run, context)
            return
        check = check_answer(text, context, min_support=self.min_support)
        if check.refusal:
            yield from self._refuse(run, streamed=True)
            return
        if check.unsupported and run.schema is None:  # cite the source that supports it (never
            # inside a JSON answer: appending [n] would break it)
            text, run.inferred = attribute_uncited(text, context, min_support=self.min_support)
            check = check_answer(text, context, min_support=self.min_support)
        yield from self._finish(run, text, "generative", context, check)

    def _request(self, run: _Run, answer_tokens: int) -> ChatRequest:
        top = run.result.confidence
        return ChatRequest(
            run.prompt,
            max_tokens=answer_tokens,
            temperature=0.0,
            timeout_s=self.model_timeout_s,
            deadline=self._time.now() + self.deadline_s if self.deadline_s else None,
            tenant=run.budget.tenant,
            max_cost=run.budget.max_cost,
            hints=RoutingHints(run.question, top.top_dense_score, top.margin),
            json_schema=run.schema,
        )

    def _template_for(self, run: _Run) -> tuple[PromptTemplate, str]:
        """The prompt and the schema text it shows: the JSON prompt when a schema is asked."""
        if run.schema is None:
            return self.template, ""
        return load_template(JSON_TEMPLATE), json.dumps(run.schema, ensure_ascii=False)

    def _call(
        self, run: _Run, model: ChatModel, request: ChatRequest, parts: list[str]
    ) -> Iterator[AnswerEvent]:
        chunks: ChatStream | None = None
        run.error = None
        try:  # the gateway records what it does into run.log, wherever this flow is advanced
            with recording(run.log):  # a provider may fail here already (e.g. loading)
                chunks = recorded(model.stream(request), run.log)
            for chunk in chunks:
                if chunk.text_delta:
                    run.clock.first_token()
                    parts.append(chunk.text_delta)
                    yield TokenEvent(chunk.text_delta)
                run.usage = chunk.usage or run.usage
                run.model = chunk.model or run.model
        except (ChatModelError, ModelError) as exc:
            run.degraded, run.error = (exc.code, str(exc)), exc
        finally:  # stop generation now if our consumer went away (e.g. a client disconnect)
            if chunks is not None:
                chunks.close()

    def _fit_tokens(self, run: _Run, overhead: int, budget: int) -> tuple[int, int]:
        """(context budget, answer tokens) so that prompt + completion <= budget.max_tokens."""
        limit = run.budget.max_tokens or 0
        answer_tokens = min(self.max_answer_tokens, max(MIN_ANSWER_TOKENS, limit // 4))
        room = limit - overhead - answer_tokens
        if room < MIN_CONTEXT_BUDGET // 2:
            raise BudgetExceededError(
                f"max_tokens {limit} leaves no room for a context: the prompt alone takes "
                f"{overhead} tokens and the answer {answer_tokens}",
                hint=f"allow at least {overhead + answer_tokens + MIN_CONTEXT_BUDGET // 2} tokens",
            )
        if room < budget:
            run.log.decide("budget", f"context {budget} -> {room} tokens to fit max_tokens {limit}")
        return min(budget, room), answer_tokens

    def _extractive(self, run: _Run, context: PackedContext) -> Iterator[AnswerEvent]:
        sentences = extract_sentences(
            run.question, context, max_sentences=self.extractive_sentences
        )
        if not sentences:
            yield from self._refuse(run)
            return
        if run.schema is not None:  # quoted sentences are not JSON: the format contract is broken
            if run.degraded is None:
                run.degraded = (SCHEMA_UNSUPPORTED, SCHEMA_UNSUPPORTED_DETAIL)
            else:
                run.degraded = (run.degraded[0], f"{run.degraded[1]}; {SCHEMA_UNSUPPORTED_DETAIL}")
        for i, sentence in enumerate(sentences):
            run.clock.first_token()
            yield TokenEvent((" " if i else "") + render_extractive((sentence,)))
        text = render_extractive(sentences)
        check = check_answer(text, context, min_support=self.min_support)
        yield from self._finish(run, text, "extractive", context, check)

    def _refuse(self, run: _Run, *, streamed: bool = False) -> Iterator[AnswerEvent]:
        if not streamed:
            run.clock.first_token()
            yield TokenEvent(REFUSAL_PHRASE)
        yield DoneEvent(self._answer(run, REFUSAL_PHRASE, "cannot_answer", (), None))

    def _finish(
        self, run: _Run, text: str, mode: AnswerMode, context: PackedContext, check: CitationCheck
    ) -> Iterator[AnswerEvent]:
        citations = citations_of(context, check)
        for citation in citations:
            yield CitationEvent(citation)
        yield DoneEvent(self._answer(run, text, mode, citations, check))

    def _answer(
        self,
        run: _Run,
        text: str,
        mode: AnswerMode,
        citations: tuple[Citation, ...],
        check: CitationCheck | None,
    ) -> Answer:
        return Answer(
            question=run.question,
            text=text,
            mode=mode,
            citations=citations,
            grounded=check.grounded if check else True,
            degraded=run.degraded is not None,
            degraded_reason=run.degraded[0] if run.degraded else None,
            degraded_detail=run.degraded[1] if run.degraded else None,
            usage=run.usage or Usage(),
            cost=self._cost(run),
            latency_ms=run.clock.done(),
            template_version=run.template_version,
            model=run.model,
            invalid_citations=check.invalid if check else (),
            unsupported_sentences=check.unsupported if check else (),
            inferred_citations=run.inferred,
            hits=run.result.hits,
            gate=run.gate,
            prompt=run.prompt,
            served_by=run.model if mode == "generative" else mode,
            gateway=run.log.to_dict() if run.log.attempts or run.log.decisions else None,
            tenant=run.budget.tenant,
        )

    def _cost(self, run: _Run) -> float:
        """Every model call's cost as metered by the gateway (failed and retried calls
        included); without a metered gateway, the price of the usage reported."""
        if any(a.cost for a in run.log.attempts):
            return run.log.cost
        if self.cost_of and run.model and run.usage:
            return self.cost_of(run.model, run.usage)
        return 0.0


def _scope(collection: str | None, flt: Filter | None) -> Filter | None:
    """``flt`` narrowed to ``collection``; giving two different collections is an error."""
    if collection is None:
        return flt
    if flt is None:
        return Filter(collection=collection)
    if flt.collection not in (None, collection):
        raise QueryError(
            f"collection {collection!r} contradicts the filter's {flt.collection!r}",
            hint="give the collection once",
        )
    return dataclasses.replace(flt, collection=collection)

"""``Answerer``: the question flow as a stream of events, strung from the steps of ``steps.py``.

retrieve (hybrid) → gate (below threshold: "cannot answer", no model call) → pack the hits into
the token budget → generate (render the versioned prompt, stream the model) → verify the
citations → finish (the ``Answer``). Each step is a function of ``steps.py`` with explicit inputs
and outputs; this module decides which step follows which, and what a failure degrades to.

Configuration is one frozen ``AnswerPolicy`` (``policy.py``, built by the container); what may
differ per question (``k``, the mode, the ``Budget``, an output schema, the collection, the
conversation) is a keyword argument of ``answer``/``stream``, the same for both
(``AskOptions``). Nothing about one question is kept on the shared answerer:
``_Flow`` holds the question's retrieved hits, gate decision, stage timer and call log while it
is answered.

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

The answer cache (issue 14, ``cached.py``; None: none): with one, each question is looked up
first (``cache`` per call: ``use``, ``refresh``, ``off``); a hit yields the stored answer's
events and nothing else runs; a miss runs the flow above (reusing the question's embedding if
the lookup computed one) and offers the final answer to the cache, which marks it with what
it did (``Answer.cache``).

Multi-turn questions (issue 15, ``multiturn.py``): given the conversation's earlier turns
(``history``) and a ``Condenser`` (``condense.py``), the question is first made standalone;
everything above then runs on the standalone question.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, TypedDict, Unpack

from ragkeel.clock import SYSTEM_CLOCK, Clock
from ragkeel.embeddings.base import Vector
from ragkeel.errors import ChatModelError, ModelError, QueryError, RagkeelError
from ragkeel.gateway.base import ChatMessage, ChatModel, ChatRequest, RoutingHints, Usage
from ragkeel.gateway.calllog import CallLog
from ragkeel.generation.answer import (
    Answer,
    AnswerEvent,
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    RetrievalEvent,
    TokenEvent,
)
from ragkeel.generation.cached import AnswerCacheHook, CacheRequest, CacheUse, replay
from ragkeel.generation.citations import check_answer
from ragkeel.generation.condense import Condenser, Turn
from ragkeel.generation.context import PackedContext
from ragkeel.generation.extractive import render_extractive
from ragkeel.generation.gate import AnswerGate
from ragkeel.generation.multiturn import condensed_events
from ragkeel.generation.policy import NO_BUDGET, AnswerPolicy, Budget, GenerationMode
from ragkeel.generation.safety import GuardedStream, guard_answer, new_canary
from ragkeel.generation.steps import (
    Degradation,
    Ending,
    Gated,
    Generated,
    Retrieved,
    Timer,
    Verified,
    extract,
    finish,
    gate,
    generate,
    pack,
    pack_extractive,
    retrieve,
    template_for,
    verify,
)
from ragkeel.generation.templates import REFUSAL_PHRASE, load_template
from ragkeel.generation.tracing import record_stage_spans
from ragkeel.generation.ungrounded import apply_policy
from ragkeel.observability import names
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.filters import Filter
from ragkeel.types import AccessScope


class AskOptions(TypedDict, total=False):
    """What may differ per question: the keyword arguments of ``Answerer.answer`` and
    ``Answerer.stream``, each optional (left out: the default said)."""

    collection: str | None  # narrows ``flt`` to one collection (None: as ``flt`` says)
    flt: Filter | None
    mode: GenerationMode | None  # None: the policy's
    budget: Budget  # default NO_BUDGET: the policy's token limit only
    # reply with one JSON value valid against it (prompt ``answer_json_v1``, schema-constrained
    # decoding where the model allows)
    output_schema: Mapping[str, Any] | None
    k: int | None  # chunks to retrieve for this question (None: the policy's)
    scope: AccessScope | None  # whose data it may see (None: the default tenant, everyone)
    cache: CacheUse  # what the answer cache may do for it (``cached.py``); default "use"
    history: Sequence[Turn]  # the conversation's earlier turns, oldest first; default ()


class Answerer:
    """Answers questions over ``retriever`` with ``model`` (None: extractive answers only) as
    ``policy`` says. ``cost_of`` prices a model's usage when the gateway does not meter it
    ((model name, usage) -> USD; None: every model is free, as a local one); ``clock`` sets the
    model call's deadline; ``condenser`` makes a follow-up question standalone from its
    conversation (None: the last question is asked as it is, the history unread)."""

    def __init__(
        self,
        retriever: HybridRetriever,
        model: ChatModel | None,
        policy: AnswerPolicy | None = None,
        *,
        cost_of: Callable[[str, Usage], float] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        cache: AnswerCacheHook | None = None,
        condenser: Condenser | None = None,
    ) -> None:
        self.retriever = retriever
        self.model = model
        self.policy = policy or AnswerPolicy()
        self.answer_gate = AnswerGate(
            self.policy.gate_threshold, self.policy.gate_keyword_threshold
        )
        guard = self.policy.guard  # its canary goes into the system prompt ({canary})
        canary = guard.canary if guard and guard.canary else new_canary()
        self.template = load_template(self.policy.template_version).with_canary(canary)
        self.cost_of = cost_of
        self.clock = clock
        self.cache = cache
        self.condenser = condenser

    def answer(self, question: str, **ask: Unpack[AskOptions]) -> Answer:
        """The final answer of ``question``, asked as ``ask`` says (``AskOptions``)."""
        for event in self._answered(question, ask):
            if isinstance(event, DoneEvent):
                return event.answer
        raise AssertionError("the answer flow ended without an answer")  # pragma: no cover

    def stream(
        self, question: str, **ask: Unpack[AskOptions]
    ) -> Generator[AnswerEvent, None, None]:
        """The events of answering ``question`` (see ``answer.py``); ``close()`` it to cancel.
        Everything that may change per question is an argument here (nothing is set on the
        shared answerer)."""
        try:
            k = ask.get("k")
            if k is not None and k < 1:
                raise QueryError(f"k must be at least 1, got {k}", hint="ask for 1 or more chunks")
            yield from self._answered(question, ask)
        except RagkeelError as exc:
            yield ErrorEvent.ending(exc)

    def _answered(self, question: str, ask: AskOptions) -> Iterator[AnswerEvent]:
        """The events of ``question``: the policy's defaults applied and the collection
        narrowed into the filter now (``_asked``), made standalone from its history as it is
        iterated (``multiturn.py``)."""
        asked = self._asked(question, ask)
        offline = asked.mode == "extractive" or self.model is None
        history = ask.get("history", ())
        return condensed_events(asked, history, self.condenser, self._events, offline=offline)

    def _asked(self, question: str, ask: AskOptions) -> CacheRequest:
        """The question with the policy's defaults applied (mode, ``k``, the token budget) and
        the collection narrowed into the filter: what its answer depends on per request."""
        if unknown := ask.keys() - AskOptions.__optional_keys__:  # as with named parameters
            raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(unknown))}")
        return CacheRequest(
            question,
            _scope(ask.get("collection"), ask.get("flt")),
            ask.get("mode") or self.policy.mode,
            self.policy.budget_for(ask.get("budget", NO_BUDGET)),
            ask.get("output_schema"),
            ask.get("k") or self.policy.k,
            ask.get("scope"),
            ask.get("cache", "use"),
        )

    def _events(self, asked: CacheRequest) -> Iterator[AnswerEvent]:
        """The answer cache's lookup (a hit: its events, and nothing else happens), then the
        answer flow, whose answer the cache may keep (``cached.py``)."""
        if self.cache is None:
            yield from self._flow(asked)
            return
        found = self.cache.lookup(asked)
        if found.answer is not None:
            yield from replay(found)
            return
        confidence = None
        for event in self._flow(asked, found.vector):
            if isinstance(event, RetrievalEvent):
                confidence = event.confidence
            elif isinstance(event, DoneEvent) and confidence is not None:
                outcome = self.cache.keep(found, event.answer, confidence)
                event = DoneEvent(dataclasses.replace(event.answer, cache=outcome))
            yield event

    def _flow(self, asked: CacheRequest, vector: Vector | None = None) -> Iterator[AnswerEvent]:
        """retrieve -> gate -> (refuse | pack, quote | pack, generate, verify) -> finish;
        ``vector``: the question's embedding if the cache's lookup computed it."""
        policy, timer, log = self.policy, Timer(), CallLog()
        result = retrieve(
            self.retriever,
            asked.question,
            k=asked.k,
            mode=policy.retrieval_mode,
            flt=asked.flt,
            timer=timer,
            scope=asked.scope,
            vector=vector,
        )
        retrieved = Retrieved(asked.question, result, asked.budget, asked.output_schema)
        gated = gate(result, self.answer_gate, asked.mode, has_model=self.model is not None)
        timer.lap(names.STAGE_GATE)
        yield RetrievalEvent(result.hits, result.confidence, gated.decision)
        flow = _Flow(self, retrieved, gated, timer, log)
        if gated.route == "refuse":
            yield from flow.end(Ending.refusal(), None, streamed=False)
        elif gated.route == "extractive" or self.model is None:
            context = pack_extractive(retrieved, policy.context_budget)
            timer.lap(names.STAGE_PACK)
            yield from flow.quote(context, gated.degraded, None)
        else:
            yield from flow.generate(self.model)


@dataclasses.dataclass(frozen=True, slots=True)
class _Flow:
    """One question's way from the gate to its ``DoneEvent``: which step follows which, and
    what a failure degrades to. Holds only what every step of the question shares."""

    answerer: Answerer
    retrieved: Retrieved
    gated: Gated
    timer: Timer
    log: CallLog

    def generate(self, model: ChatModel) -> Iterator[AnswerEvent]:
        policy, retrieved = self.answerer.policy, self.retrieved
        try:  # counting with the model's tokenizer loads it: a missing model fails here
            template = template_for(self.answerer.template, retrieved.schema)
            packed = pack(retrieved, template, policy, model.count_tokens)
        except (ChatModelError, ModelError) as exc:
            degraded = Degradation(exc.code, str(exc))
            context = pack_extractive(retrieved, policy.context_budget)
            self.timer.lap(names.STAGE_PACK)
            yield ErrorEvent(degraded.code, degraded.detail, fatal=False)
            yield from self.quote(context, degraded, None)
            return
        if packed.note is not None:
            self.log.decide("budget", packed.note)
        self.timer.lap(names.STAGE_PACK)
        if not packed.context.sources:
            yield from self.end(Ending.refusal(), None, streamed=False)
            return

        shown = GuardedStream(policy.guard, packed.context) if policy.guard else None
        generated = generate(model, retrieved, packed, self.request, self.log, self.timer)
        call = yield from _shown(generated, shown)
        if call.degraded is None and policy.guard is not None:  # the output checks
            text, blocked = guard_answer(policy.guard, call.text, call.context, self.log)
            call = dataclasses.replace(
                call, text=text, degraded=Degradation(*blocked) if blocked else None
            )
        if call.degraded is not None:
            yield ErrorEvent(call.degraded.code, call.degraded.detail, fatal=False)
            yield from self.quote(call.context, call.degraded, call)
            return
        verified = verify(
            call.text,
            call.context,
            min_support=policy.min_support,
            json_answer=retrieved.schema is not None,
        )
        if verified.check.refusal:
            yield from self.end(Ending.refusal(), call, streamed=True)
            return
        if retrieved.schema is None:  # the ungrounded policy: as is, stripped or extractive
            text, ungrounded = apply_policy(policy.ungrounded, verified.text, verified.check)
            if ungrounded is not None:
                yield ErrorEvent(*ungrounded, fatal=False)
                yield from self.quote(call.context, Degradation(*ungrounded), call)
                return
            if text != verified.text:
                check = check_answer(text, call.context, min_support=policy.min_support)
                verified = Verified(text, check, verified.inferred)
        ending = Ending(verified.text, "generative", call.context, verified)
        yield from self.end(ending, call, streamed=True)

    def quote(
        self, context: PackedContext, degraded: Degradation | None, call: Generated | None
    ) -> Iterator[AnswerEvent]:
        """The extractive answer of ``context``, its sentences streamed one by one."""
        policy = self.answerer.policy
        extracted = extract(
            self.retrieved,
            context,
            degraded,
            sentences=policy.extractive_sentences,
            min_support=policy.min_support,
        )
        if extracted is None:
            yield from self.end(Ending.refusal(degraded), call, streamed=False)
            return
        for i, sentence in enumerate(extracted.sentences):
            self.timer.first_token()
            yield TokenEvent((" " if i else "") + render_extractive((sentence,)))
        ending = Ending(
            extracted.verified.text, "extractive", context, extracted.verified, extracted.degraded
        )
        yield from self.end(ending, call, streamed=True)

    def end(
        self, ending: Ending, call: Generated | None, *, streamed: bool
    ) -> Iterator[AnswerEvent]:
        """The citations and the ``DoneEvent`` (a refusal not streamed yet: its phrase first)."""
        if not streamed:
            self.timer.first_token()
            yield TokenEvent(REFUSAL_PHRASE)
        cost = self.cost(call)
        answer = finish(
            self.retrieved,
            self.gated.decision,
            ending,
            call,
            self.log,
            cost=cost,
            latency_ms=self.timer.done(),
        )
        record_stage_spans(answer, self.timer.wall_ns)  # when traced (generation/tracing.py)
        for citation in answer.citations:
            yield CitationEvent(citation)
        yield DoneEvent(answer)

    def request(self, prompt: tuple[ChatMessage, ...], answer_tokens: int) -> ChatRequest:
        """The model call for ``prompt``: its deadline starts now (a retry gets its own)."""
        policy, retrieved = self.answerer.policy, self.retrieved
        top, deadline_s = retrieved.result.confidence, policy.deadline_s
        return ChatRequest(
            prompt,
            max_tokens=answer_tokens,
            temperature=0.0,
            timeout_s=policy.model_timeout_s,
            deadline=self.answerer.clock.now() + deadline_s if deadline_s else None,
            tenant=retrieved.budget.tenant,
            max_cost=retrieved.budget.max_cost,
            hints=RoutingHints(retrieved.question, top.top_dense_score, top.margin),
            json_schema=retrieved.schema,
        )

    def cost(self, call: Generated | None) -> float:
        """Every model call's cost as metered by the gateway (failed and retried calls
        included); without a metered gateway, the price of the usage reported."""
        if any(a.cost for a in self.log.attempts):
            return self.log.cost
        cost_of = self.answerer.cost_of
        if cost_of and call is not None and call.model:
            return cost_of(call.model, call.usage)
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


def _shown(
    events: Generator[AnswerEvent, None, Generated], shown: GuardedStream | None
) -> Generator[AnswerEvent, None, Generated]:
    """``events`` with each ``TokenEvent`` cut to what the output checks let out (``shown``;
    None: as it comes), the rest of a whole answer at its end. Closing it closes ``events``."""
    if shown is None:
        return (yield from events)
    try:
        while True:
            try:
                event = next(events)
            except StopIteration as stop:
                call: Generated = stop.value
                break
            if not isinstance(event, TokenEvent):
                yield event
            elif text := shown.feed(event.text):
                yield TokenEvent(text)
    finally:
        events.close()
    if call.degraded is None and (rest := shown.flush()):
        yield TokenEvent(rest)  # what the output checks held back to the end
    return call

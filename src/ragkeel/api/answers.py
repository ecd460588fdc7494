"""The answer flow behind ``/v1/query`` and ``/v1/chat/completions``: ``Answerer.stream`` driven
by an ``EventPump`` (its own thread; cancelled when the client goes away), one trace per
request, the final ``DoneEvent`` replaced by ``Finished`` (the answer and its trace id).

Both routes admit the request first (a refusal is the first thing a client can get), then
``start_admitted`` checks the question and starts the answer within the tenant's budget, and
``collect_admitted`` (or the route's stream, on close) settles the admission with the tokens
the answer used. An admission is released on every path: a refused question, a failed start,
a failed or cancelled answer."""

from __future__ import annotations

import time
from collections.abc import Generator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

from fastapi import Request

from ragkeel.admission.gates import Admitted
from ragkeel.api.event_pump import EventPump
from ragkeel.api.problems import INTERNAL
from ragkeel.api.public_ids import PublicView
from ragkeel.api.state import ApiState
from ragkeel.api.tracing import record_trace
from ragkeel.container import Container
from ragkeel.errors import AnswerCancelledError, ProblemError, RagkeelError
from ragkeel.generation.answer import (
    Answer,
    AnswerEvent,
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    RetrievalEvent,
    TokenEvent,
)
from ragkeel.generation.cached import CacheUse
from ragkeel.generation.condense import Turn
from ragkeel.generation.policy import NO_BUDGET, Budget, GenerationMode
from ragkeel.types import AccessScope


@dataclass(frozen=True, slots=True)
class Finished:
    answer: Answer
    trace_id: str | None


StreamItem = RetrievalEvent | TokenEvent | CitationEvent | ErrorEvent | Finished


def cache_use(request: Request, wanted: bool = True) -> CacheUse:
    """What the answer cache may do for this request (``generation/cached.py``): the header
    ``Cache-Control: no-store`` -> ``off`` (neither read nor kept); ``no-cache`` (or
    ``max-age=0``) or the body's ``"cache": false`` -> ``refresh`` (not read; the fresh answer
    replaces the stored one); else ``use``."""
    directives = {
        d.strip().lower() for d in request.headers.get("cache-control", "").split(",") if d
    }
    if "no-store" in directives:
        return "off"
    if not wanted or "no-cache" in directives or "max-age=0" in directives:
        return "refresh"
    return "use"


def checked_question(state: ApiState, text: str, route: str, tenant: str | None = None) -> str:
    """The question, stripped; an empty or too long one is refused (and traced as
    ``tenant``'s)."""
    try:
        return state.limits.check_question(text)
    except RagkeelError as exc:
        record_trace(state.container, route, question=text[:1000], error=exc, tenant=tenant)
        raise


def start_answer(
    state: ApiState,
    question: str,
    *,
    route: str,
    collection: str | None,
    k: int | None,
    mode: GenerationMode | None,
    budget: Budget = NO_BUDGET,
    output_schema: dict[str, Any] | None = None,
    scope: AccessScope | None = None,
    cache: CacheUse = "use",
    history: Sequence[Turn] = (),
) -> EventPump[StreamItem]:
    """The answer's events, produced in a thread as soon as they are iterated; retrieval
    sees only what ``scope`` (the caller's, ``api/auth.py``) may see; ``cache``: what the
    answer cache may do (``cache_use``); ``history``: the conversation before the question
    (made standalone from it, issue 15). The trace keeps the internal document ids; the
    events name documents as clients see them (``public_ids.py``)."""
    events = state.answerer.stream(
        question,
        collection=collection,
        mode=mode,
        budget=budget,
        output_schema=output_schema,
        k=k,
        scope=scope,
        cache=cache,
        history=history,
    )
    tenant = scope.tenant if scope is not None else None
    traced = _traced(state.container, events, question, route, tenant)
    source = _public(traced, state.public_view(scope))
    pump: EventPump[StreamItem] = EventPump(source, name="ragkeel-answer")
    state.track(pump)
    return pump


def start_admitted(
    state: ApiState,
    admitted: Admitted,
    text: str,
    *,
    route: str,
    collection: str | None,
    k: int | None,
    mode: GenerationMode | None,
    max_cost: float | None = None,
    max_tokens: int | None = None,
    output_schema: dict[str, Any] | None = None,
    scope: AccessScope | None = None,
    answer_tokens: int | None = None,
    cache: CacheUse = "use",
    history: Sequence[Turn] = (),
) -> EventPump[StreamItem]:
    """``checked_question`` then ``start_answer`` for an admitted request, within
    ``Budget(admitted.tenant, max_cost, max_tokens, answer_tokens)``; if either fails, the
    admission is released (nothing was used) and the error propagates."""
    try:
        question = checked_question(state, text, route, scope.tenant if scope else None)
        budget = Budget(admitted.tenant, max_cost, max_tokens, answer_tokens)
        return start_answer(
            state,
            question,
            route=route,
            collection=collection,
            k=k,
            mode=mode,
            budget=budget,
            output_schema=output_schema,
            scope=scope,
            cache=cache,
            history=history,
        )
    except BaseException:
        admitted.release()
        raise


async def collect_admitted(
    pump: EventPump[StreamItem], request: Request, admitted: Admitted
) -> Finished:
    """``collect_answer``, then the admission settled with the answer's tokens (released
    whatever happens)."""
    try:
        done = await collect_answer(pump, request)
        admitted.used_tokens = done.answer.usage.total_tokens
    finally:
        admitted.release()
    return done


def _traced(
    container: Container,
    events: Generator[AnswerEvent, None, None],
    question: str,
    route: str,
    tenant: str | None = None,
) -> Generator[StreamItem, None, None]:
    started = time.perf_counter()
    recorded = False  # one trace per request: its id is the request's (observability/context.py)

    def failed(error: BaseException) -> None:
        nonlocal recorded
        if recorded:  # a fatal error event was traced; the close that follows is not news
            return
        recorded = True
        elapsed = (time.perf_counter() - started) * 1000
        record_trace(
            container, route, question=question, error=error, latency_ms=elapsed, tenant=tenant
        )

    try:
        for event in events:
            if isinstance(event, DoneEvent):
                recorded = True
                yield Finished(event.answer, record_trace(container, route, answer=event.answer))
                return
            if isinstance(event, ErrorEvent) and event.error is not None:  # fatal
                failed(event.error)
            yield event
    except GeneratorExit:  # cancelled: the client went away, or the server is stopping
        failed(AnswerCancelledError("the answer was cancelled before it was complete"))
        raise
    except BaseException as exc:
        failed(exc)
        raise
    finally:
        events.close()  # closes the model stream: generation stops


def _public(
    items: Generator[StreamItem, None, None], view: PublicView
) -> Generator[StreamItem, None, None]:
    """``items`` with documents named by public ids and file names (``public_ids.py``)."""
    try:
        for item in items:
            if isinstance(item, Finished):
                yield Finished(view.answer(item.answer), item.trace_id)
            elif isinstance(item, RetrievalEvent):
                yield replace(item, hits=tuple(view.hit(h) for h in item.hits))
            elif isinstance(item, CitationEvent):
                yield replace(item, citation=view.citation(item.citation))
            else:
                yield item
    finally:
        items.close()  # cancelling the pump closes the answer (and the model stream)


async def collect_answer(pump: EventPump[StreamItem], request: Request) -> Finished:
    """The final answer; a fatal error event is raised as a problem, and a client that
    disconnects cancels the answer."""
    async with aclosing(pump.items()) as items:
        async for item in items:
            if isinstance(item, Finished):
                return item
            if isinstance(item, ErrorEvent) and item.error is not None:  # fatal
                raise item.error
            if await request.is_disconnected():
                raise AnswerCancelledError("the client closed the connection")
    raise ProblemError(INTERNAL, "the answer flow ended without an answer", status=500)

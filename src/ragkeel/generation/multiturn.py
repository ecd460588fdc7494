"""The multi-turn step of the answer flow (issue 15): a follow-up question made standalone from
its conversation before anything else runs, so retrieval, the answer cache and the prompt all
see the standalone question; the answer carries both (``Answer.condensed``: the last message,
the condenser used).

It wraps the rest of the flow (the answer cache and the steps, ``answerer.py``) the way
``cached.py`` wraps the steps: it changes the question going in and the final answer coming
out, and passes every other event through. A question with no earlier user turn, or an
answerer without a condenser, is asked as it is: no condenser is called. Where no model may be
called (an extractive answer, or no model at all) the condenser's ``offline()`` one condenses
(the rules, unless a model was asked for explicitly). The condensers themselves live in
``condense.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

from ragkeel.generation.answer import Answer, AnswerEvent, DoneEvent
from ragkeel.generation.cached import CacheRequest
from ragkeel.generation.condense import Condensed, Condenser, Turn
from ragkeel.generation.tracing import traced_condense
from ragkeel.observability import names


def condensed_events(
    asked: CacheRequest,
    history: Sequence[Turn],
    condenser: Condenser | None,
    answer: Callable[[CacheRequest], Iterator[AnswerEvent]],
    *,
    offline: bool,
) -> Iterator[AnswerEvent]:
    """The events of ``answer(asked)``, ``asked`` made standalone from ``history`` first (when
    there is an earlier user turn and a ``condenser``; ``offline``: no model may be called);
    the ``DoneEvent``'s answer then carries the ``Condensed`` record, its time (``condense``,
    counted in ``first_token`` and ``total``) and its model call's cost."""
    if condenser is None or not any(t.role == "user" for t in history):
        yield from answer(asked)
        return
    if offline:
        condenser = condenser.offline()
    tenant, question = asked.budget.tenant, asked.question
    condensed = traced_condense(lambda: condenser.condense(question, history, tenant=tenant))
    for event in answer(dataclasses.replace(asked, question=condensed.question)):
        if isinstance(event, DoneEvent):
            event = DoneEvent(_with_condensed(event.answer, condensed))
        yield event


def _with_condensed(answer: Answer, condensed: Condensed) -> Answer:
    """``answer`` marked with how its question was condensed: the time it took comes before
    every stage measured from the start (``first_token``, ``total``), its cost is added."""
    ms = dict(answer.latency_ms)
    for stage in (names.STAGE_FIRST_TOKEN, names.STAGE_TOTAL):
        if stage in ms:
            ms[stage] = round(ms[stage] + condensed.ms, 3)
    ms[names.STAGE_CONDENSE] = round(condensed.ms, 3)
    return dataclasses.replace(
        answer, condensed=condensed, latency_ms=ms, cost=answer.cost + condensed.cost
    )

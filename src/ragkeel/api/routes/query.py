"""``POST /v1/query``: the answer object, or with ``"stream": true`` server-sent events::

event: sources     {sources, gate, confidence}   (first, as soon as retrieval and the gate end,
                                                  before the model is called: each source's
                                                  rank, public document id, file name, title,
                                                  page and score; a refusal sends it too)
event: retrieval   {hits, confidence, gate}      (the same hits in full: texts, per-retriever
                                                  ranks)
event: token       {text}                        (repeated)
event: error       {code, message, fatal}        (fatal=false: the answer goes on, degraded;
                                                  the tokens so far are void)
event: citation    {number, document_id, ...}    (one per cited source)
event: done        the answer object (usage, cost, trace_id, cached, ...)

An answer from the answer cache (issue 14) has the same events (its sources: the stored
answer's hits), its text as one token, and ``"cached": true``; ``"cache": false`` in the body or ``Cache-Control: no-cache`` skips the
lookup (the fresh answer replaces the stored one), ``Cache-Control: no-store`` also keeps
nothing (``api/answers.py`` ``cache_use``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from ragkeel.admission.gates import Admitted, closing
from ragkeel.api.answers import (
    Finished,
    StreamItem,
    cache_use,
    collect_admitted,
    start_admitted,
)
from ragkeel.api.auth import caller_scope, require
from ragkeel.api.event_pump import EventPump
from ragkeel.api.problems import client_message, error_payload, status_for
from ragkeel.api.schemas import (
    AnswerOut,
    CitationOut,
    QueryRequest,
    RetrievalOut,
    SourcesOut,
)
from ragkeel.api.sse import EventStreamResponse, frame
from ragkeel.api.state import ApiState, get_state
from ragkeel.errors import OutputSchemaUnsupportedError
from ragkeel.generation.answer import CitationEvent, ErrorEvent, RetrievalEvent, TokenEvent
from ragkeel.generation.condense import Turn
from ragkeel.types import AccessScope

ROUTE = "/v1/query"
router = APIRouter(tags=["answers"])
_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the answer object, or an event stream when `stream` is true",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.post(
    ROUTE, response_model=AnswerOut, responses=_SSE_DOC, dependencies=[Depends(require("query"))]
)
async def query(
    body: QueryRequest,
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    scope: Annotated[AccessScope, Depends(caller_scope)],
) -> Response:
    """Answer a question from the index, with numbered citations."""
    _check_format(body, state)
    admitted = state.admit(  # 429 (or 503 MODEL_BUSY) first
        request, body.question, total_tokens=body.max_tokens, mode=body.mode, stream=body.stream
    )
    pump = start_admitted(
        state,
        admitted,
        body.question,
        route=ROUTE,
        collection=body.collection,
        k=body.k,
        mode=body.mode,
        max_cost=body.max_cost,
        max_tokens=body.max_tokens,
        output_schema=body.output_schema,
        scope=scope,
        cache=cache_use(request, body.cache),
        history=tuple(Turn(t.role, t.content) for t in body.history),
    )
    if body.stream:
        return EventStreamResponse(
            _events(pump, request, admitted), on_close=closing(pump.cancel, admitted)
        )
    done = await collect_admitted(pump, request, admitted)
    out = AnswerOut.from_answer(done.answer, done.trace_id)
    return JSONResponse(out.model_dump(mode="json"))


def _check_format(body: QueryRequest, state: ApiState) -> None:
    """An ``output_schema`` needs a generative answer: asked of an extractive one (the request's
    mode, or the server's default) it could never be honoured, so it is refused up front."""
    if body.output_schema is not None and (body.mode or state.answerer.policy.mode) == "extractive":
        raise OutputSchemaUnsupportedError(
            "output_schema asks for JSON, but an extractive answer quotes sentences from the "
            "sources and is never JSON",
            hint='ask with "mode": "generative", or drop output_schema',
        )


async def _events(
    pump: EventPump[StreamItem], request: Request, admitted: Admitted
) -> AsyncIterator[bytes]:
    async with aclosing(pump.items()) as items:
        try:
            async for item in items:
                if isinstance(item, Finished):
                    admitted.used_tokens = item.answer.usage.total_tokens
                yield encode(item)
                if await request.is_disconnected():
                    return  # leaving cancels the pump: generation stops
        except Exception as exc:  # after the status line: the failure becomes an event
            yield frame({**error_payload(exc), "fatal": True}, event="error")


def encode(item: StreamItem) -> bytes:
    if isinstance(item, TokenEvent):
        return frame({"text": item.text}, event="token")
    if isinstance(item, RetrievalEvent):  # one write: the sources, then the hits in full
        sources = SourcesOut.from_event(item).model_dump(mode="json")
        retrieval = RetrievalOut.from_event(item).model_dump(mode="json")
        return frame(sources, event="sources") + frame(retrieval, event="retrieval")
    if isinstance(item, CitationEvent):
        return frame(CitationOut.model_validate(item.citation).model_dump(), event="citation")
    if isinstance(item, ErrorEvent):
        payload: dict[str, Any] = {
            "code": item.code,
            "message": client_message(item.code, item.message),  # the trace has it whole
        }
        if item.fatal:
            payload["status"] = status_for(item.error) if item.error else 500
        return frame({**payload, "fatal": item.fatal}, event="error")
    assert isinstance(item, Finished)
    answer = AnswerOut.from_answer(item.answer, item.trace_id)
    return frame(answer.model_dump(mode="json"), event="done")

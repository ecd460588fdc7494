"""``POST /v1/chat/completions``, OpenAI-compatible: the last user message is the question,
``choices[0].message.content`` the cited answer (with a "Sources:" list), ``usage`` in OpenAI's
shape, ragkeel's fields (citations, mode, grounded, degraded, trace_id...) under ``ragkeel``.

Multi-turn (issue 15): the user and assistant messages before the last user message are the
conversation; the answerer makes the question standalone from it (``generation/condense.py``,
``generation.condense``) before retrieval, and the trace keeps both questions. ``model``
picks what is searched (``routes/models.py``): ``ragkeel`` (or none) every collection the
caller may read, ``ragkeel/<collection>`` one collection; any other model is 404
``MODEL_NOT_FOUND``, and a ``collection`` (``extra_body``) that contradicts the model's is 422
``QUERY_INVALID``.

Streaming sends ``chat.completion.chunk``s as ``data:`` events and ends with ``data: [DONE]``;
the last chunk before it carries ``finish_reason``, ``usage`` and ``ragkeel``. Sources first: the
chunk after the opening one (``role``) is sent as soon as retrieval and the gate end, before the
model is called; its delta is ``{"content": ""}`` and its ``ragkeel`` field holds the sources and
the gate decision (``SourcesOut``, as ``/v1/query``'s ``sources`` event). OpenAI clients keep
unknown fields (the ``openai`` Python client: ``chunk.model_extra["ragkeel"]``) and an empty
content delta adds nothing to the text, so clients that do not look for it are unaffected
(tests/api/test_sources_first.py reads it with the ``openai`` client). When the model fails
mid-answer the extractive answer follows a one-line note (content already sent cannot be taken
back); a fatal failure is an OpenAI-style ``{"error": {...}}`` event.

An answer from the answer cache (issue 14) streams as one content chunk and says
``"cached": true`` under ``ragkeel``; ``"cache": false`` (``extra_body``) or the header
``Cache-Control: no-cache``/``no-store`` bypasses it, as for ``/v1/query``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

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
from ragkeel.api.openai_schemas import (
    ChatCompletionOut,
    ChatCompletionRequest,
    RagkeelExtras,
    chunk,
    completion,
    completion_id,
    now,
    sources_footer,
)
from ragkeel.api.problems import client_message, error_payload
from ragkeel.api.routes.models import BASE_MODEL, collection_of
from ragkeel.api.schemas import SourcesOut, UsageOut
from ragkeel.api.sse import DONE, EventStreamResponse, frame
from ragkeel.api.state import ApiState, get_state
from ragkeel.api.tracing import record_trace
from ragkeel.errors import QueryError, RagkeelError
from ragkeel.generation.answer import ErrorEvent, RetrievalEvent, TokenEvent
from ragkeel.types import AccessScope

ROUTE = "/v1/chat/completions"
router = APIRouter(tags=["openai"])


@router.post(ROUTE, response_model=ChatCompletionOut, dependencies=[Depends(require("query"))])
async def chat_completions(
    body: ChatCompletionRequest,
    request: Request,
    state: Annotated[ApiState, Depends(get_state)],
    scope: Annotated[AccessScope, Depends(caller_scope)],
) -> Response:
    """OpenAI-compatible chat completion answering the last user message from the index, made
    standalone from the conversation before it."""
    try:
        text, history = body.question(), body.history()
        collection = await _collection(body, state, scope)
    except RagkeelError as exc:
        record_trace(state.container, ROUTE, error=exc, tenant=scope.tenant)
        raise
    admitted = state.admit(  # 429 (or 503 MODEL_BUSY) first
        request, text, answer_tokens=_max_tokens(body), mode=body.mode, stream=body.stream
    )
    pump = start_admitted(
        state,
        admitted,
        text,
        route=ROUTE,
        collection=collection,
        k=body.k,
        mode=body.mode,
        scope=scope,
        answer_tokens=_max_tokens(body),
        cache=cache_use(request, body.cache),
        history=history,
    )
    model = served_model(state)
    if body.stream:
        return EventStreamResponse(
            _chunks(pump, request, model, admitted), on_close=closing(pump.cancel, admitted)
        )
    done = await collect_admitted(pump, request, admitted)
    out = completion(done.answer, done.trace_id, model=model)
    return JSONResponse(out.model_dump(mode="json"))


async def _collection(
    body: ChatCompletionRequest, state: ApiState, scope: AccessScope
) -> str | None:
    """The collection asked: the model's (``ragkeel/<collection>``) or the ``collection``
    extension; both must agree."""
    if body.model in (None, BASE_MODEL):  # no store read for the common case
        return body.collection
    named = await run_in_threadpool(collection_of, body.model, state.container.store, scope)
    if body.collection is not None and named is not None and body.collection != named:
        raise QueryError(
            f"model {body.model!r} names collection {named!r}, but collection is "
            f"{body.collection!r}",
            hint="give the collection once: in the model or in collection",
        )
    return named if named is not None else body.collection


def _max_tokens(body: ChatCompletionRequest) -> int | None:
    """OpenAI's ``max_completion_tokens`` (or the older ``max_tokens``): the answer's tokens."""
    return body.max_completion_tokens or body.max_tokens


def served_model(state: ApiState) -> str:
    model = state.answerer.model
    return model.name if model is not None else "ragkeel-extractive"


async def _chunks(
    pump: EventPump[StreamItem], request: Request, model: str, admitted: Admitted
) -> AsyncIterator[bytes]:
    cid, created = completion_id(), now()

    def data(delta: dict[str, str], finish: str | None = None, **extra: Any) -> bytes:
        return frame(chunk(cid, created, model, delta, finish, **extra))

    yield data({"role": "assistant", "content": ""})
    streamed = False
    async with aclosing(pump.items()) as items:
        try:
            async for item in items:
                if isinstance(item, RetrievalEvent):
                    sources = SourcesOut.from_event(item).model_dump(mode="json")
                    yield data({"content": ""}, ragkeel=sources)
                elif isinstance(item, TokenEvent) and item.text:
                    streamed = True
                    yield data({"content": item.text})
                elif isinstance(item, ErrorEvent) and item.fatal:
                    yield frame({"error": _error(item.code, item.message)})
                    return
                elif isinstance(item, ErrorEvent) and streamed:
                    streamed = False
                    note = f"\n\n[the model failed ({item.code}); an extractive answer follows]\n\n"
                    yield data({"content": note})
                elif isinstance(item, Finished):
                    admitted.used_tokens = item.answer.usage.total_tokens
                    yield _finish(data, item)
                    yield DONE
                    return
                if await request.is_disconnected():
                    return  # leaving cancels the pump: generation stops
        except Exception as exc:
            payload = error_payload(exc)
            yield frame({"error": _error(payload["code"], payload["message"])})


def _finish(data: Callable[..., bytes], done: Finished) -> bytes:
    answer = done.answer
    footer = sources_footer(answer)
    return b"".join(
        [
            data({"content": footer}) if footer else b"",
            data(
                {},
                "stop",
                usage=UsageOut.model_validate(answer.usage).model_dump(),
                ragkeel=RagkeelExtras.from_answer(answer, done.trace_id).model_dump(mode="json"),
            ),
        ]
    )


def _error(code: str, message: str) -> dict[str, Any]:
    """An OpenAI-style error; the message as clients may read it (the trace has it whole)."""
    return {"message": client_message(code, message), "type": "ragkeel_error", "code": code}

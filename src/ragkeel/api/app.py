"""``create_app(container)``: the FastAPI application.

The lifespan opens what requests share (store, retriever, pipeline, trace store) before the
first request, optionally loads the chat model in the background (``preload_model``: ``serve``
does; ``/readyz`` reports it), and at shutdown cancels the answers still streaming, waits for
their threads, and closes the container.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import ragkeel
from ragkeel.api.errors import install_error_handlers
from ragkeel.api.limits import BodyLimitMiddleware, Limits
from ragkeel.api.routes import ROUTERS
from ragkeel.api.state import ApiState
from ragkeel.container import Container
from ragkeel.errors import RagkeelError
from ragkeel.generation.answerer import Answerer

log = logging.getLogger("ragkeel.api")


def create_app(
    container: Container,
    *,
    answerer: Answerer | None = None,
    limits: Limits | None = None,
    preload_model: bool = False,
) -> FastAPI:
    """The API over ``container``, which its lifespan opens and closes (nothing is opened
    before). ``answerer`` replaces ``container.answerer`` (tests pass one with a scripted model)."""
    state = ApiState(container, limits or Limits(), answerer)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_open, state)
        if preload_model:
            threading.Thread(
                target=state.load_model, name="ragkeel-model-load", daemon=True
            ).start()
        try:
            yield
        finally:
            await run_in_threadpool(state.cancel_all)
            container.close()

    app = FastAPI(
        title="ragkeel",
        version=ragkeel.__version__,
        summary="Grounded answers with citations from your documents; OpenAI-compatible chat.",
        lifespan=lifespan,
    )
    app.state.ragkeel = state
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=state.limits.max_body_bytes)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


def _open(state: ApiState) -> None:
    """Open the shared components now rather than racing to on the first requests. A store
    that cannot be opened is logged, not fatal: ``/readyz`` reports it."""
    c = state.container
    try:
        for component in ("store", "retriever", "pipeline", "traces"):
            getattr(c, component)
        _ = state.answerer
    except RagkeelError as exc:
        log.error("ragkeel is not ready: %s", exc)

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
from ragkeel.admission.gates import Admission
from ragkeel.api.admission import LoadSheddingMiddleware
from ragkeel.api.problems import install_error_handlers
from ragkeel.api.request_limits import BodyLimitMiddleware, Limits
from ragkeel.api.routes import ROUTERS
from ragkeel.api.state import ApiState
from ragkeel.api.uploads import UploadArea
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
    admission: Admission | None = None,
) -> FastAPI:
    """The API over ``container``, which its lifespan opens and closes (nothing is opened
    before). ``answerer`` replaces ``container.answerer`` (tests pass one with a scripted model);
    ``limits`` replaces ``container.request_limits`` (body size, question length);
    ``admission`` replaces ``container.admission`` (rate limits, load shedding, the local
    model's queue)."""
    state = ApiState(container, limits or container.request_limits, answerer)
    state.admission = admission or container.admission

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
    app.add_middleware(LoadSheddingMiddleware)  # added last = runs first: shed before anything
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    return app


def _open(state: ApiState) -> None:
    """Open the shared components now rather than racing to on the first requests, and delete
    the uploads a crash left without a document (``uploads.py``). A store that cannot be opened
    is logged, not fatal: ``/readyz`` reports it."""
    c = state.container
    try:
        for component in ("store", "retriever", "pipeline", "traces"):
            getattr(c, component)
        removed = UploadArea(c.uploads_dir).remove_orphans(c.store)
        if removed:
            log.warning("removed %d upload(s) left without a document by a crash", len(removed))
        _ = state.answerer.model  # the model (and the gateway under it) now, not on a question
    except RagkeelError as exc:
        log.error("ragkeel is not ready: %s", exc)

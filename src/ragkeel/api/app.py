"""``create_app(container)``: the FastAPI application.

Who may call it (``auth.py``, ``identity/edge.py``): with ``api.auth`` required every route
but the probes needs an API key of the route's scope; state-changing requests from another web
origin are refused; CORS only for ``api.cors_origins``; ``/docs`` and ``/openapi.json`` only
when ``api.docs`` (``auto``: when auth is off); ``/metrics`` as ``observability.metrics`` says
(``routes/metrics.py``). Middleware, outermost first: CORS (when
configured; it answers preflights), ``AuthMiddleware`` (401 before any body is read),
``CrossOriginMiddleware``, ``LoadSheddingMiddleware``, ``BodyLimitMiddleware``; between CORS and
auth, ``RequestContextMiddleware`` (``request_context.py``: the request's trace id for its log
lines and trace, returned as ``X-Trace-Id``), then ``TraceContextMiddleware``
(``trace_context.py``: the request's OpenTelemetry root span, when ``observability.otlp`` is on).

The dashboard (``ui/``, issue 12) is mounted under ``/ui`` unless ``ui.enabled`` is off; the
``AuthMiddleware`` lets ``/ui`` through without a bearer key, since the dashboard signs browsers
in itself (``ui/session.py``: a session cookie that is not the key).

The lifespan opens what requests share (store, retriever, pipeline, trace store) before the
first request, optionally loads the chat model in the background (``preload_model``: ``serve``
does; ``/readyz`` reports it) and starts the alert monitor's thread (``monitor``: ``serve``
does, when ``monitor.enabled``; ``observability/monitor/``), and at shutdown cancels the answers still streaming, waits for
their threads, and closes the container.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

import ragkeel
from ragkeel.admission.gates import Admission
from ragkeel.api.admission import LoadSheddingMiddleware
from ragkeel.api.auth import (
    PRINCIPALS_HEADER,
    PUBLIC,
    TENANT_HEADER,
    AuthMiddleware,
    CrossOriginMiddleware,
    scope_decisions,
)
from ragkeel.api.problems import install_error_handlers
from ragkeel.api.request_context import RequestContextMiddleware
from ragkeel.api.request_limits import BodyLimitMiddleware, Limits
from ragkeel.api.routes import ROUTERS
from ragkeel.api.routes.health import readiness
from ragkeel.api.routes.metrics import PATH as METRICS_PATH
from ragkeel.api.routes.metrics import metrics_router
from ragkeel.api.state import ApiState
from ragkeel.api.trace_context import TraceContextMiddleware
from ragkeel.api.uploads import UploadArea
from ragkeel.container import Container
from ragkeel.errors import QueueError, RagkeelError
from ragkeel.generation.answerer import Answerer
from ragkeel.observability.context import TRACE_ID_HEADER
from ragkeel.ui import PREFIX as UI_PREFIX
from ragkeel.ui import build_ui

log = logging.getLogger("ragkeel.api")


def create_app(
    container: Container,
    *,
    answerer: Answerer | None = None,
    limits: Limits | None = None,
    preload_model: bool = False,
    admission: Admission | None = None,
    host: str | None = None,
    monitor: bool = False,
) -> FastAPI:
    """The API over ``container``, which its lifespan opens and closes (nothing is opened
    before). ``answerer`` replaces ``container.answerer`` (tests pass one with a scripted model);
    ``limits`` replaces ``container.request_limits`` (body size, question length);
    ``admission`` replaces ``container.admission`` (rate limits, load shedding, the local
    model's queue). ``host``: the address ``serve`` binds, against which ``api.auth: auto`` is
    resolved (None: not known, ``auto`` means off; ``identity/edge.py``). ``monitor``: run the
    alert monitor's background thread while the app runs (``serve``; when ``monitor.enabled``)."""
    state = ApiState(container, limits or container.request_limits, answerer)
    state.admission = admission or container.admission
    edge = container.edge
    state.auth_required = edge.auth_required(host)
    docs = edge.docs_served(state.auth_required)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(_open, state)
        if monitor and container.monitor_enabled:
            container.start_monitor()  # alert rules and their gauge (issue 12); closed with it
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
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.ragkeel = state
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    public = {path for (_, path), s in scope_decisions(ROUTERS).items() if s == PUBLIC}
    if docs:
        public |= {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
    if container.metrics_access != "off":  # GET /metrics (routes/metrics.py says who may)
        app.include_router(metrics_router(public=container.metrics_access == "public"))
        if container.metrics_access == "public":
            public.add(METRICS_PATH)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=state.limits.max_body_bytes)
    app.add_middleware(LoadSheddingMiddleware)  # shed before routing and body parsing
    app.add_middleware(CrossOriginMiddleware, allowed_origins=edge.cors_origins)
    # the dashboard (issue 12): it signs browsers in with its own session cookie (ui/session.py)
    ui_prefixes: tuple[str, ...] = ()
    if container.ui.enabled:
        ui_app = build_ui(
            container,
            auth_required=state.auth_required,
            readiness=lambda details: readiness(state, details=details),
            names_of=state.public_view,
            **_monitor_views(container) if monitor and container.monitor_enabled else {},
        )
        app.mount(UI_PREFIX, ui_app, name="ui")
        ui_prefixes = (f"{UI_PREFIX}/",)
        public.add(UI_PREFIX)
    app.add_middleware(AuthMiddleware, public_paths=public, public_prefixes=ui_prefixes)
    app.add_middleware(TraceContextMiddleware)  # the root span, in the request's context (issue 12)
    app.add_middleware(RequestContextMiddleware)  # the trace id, before auth can log or refuse
    if edge.cors_origins:  # added last = runs first: it answers the preflights
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(edge.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", TENANT_HEADER, PRINCIPALS_HEADER],
            expose_headers=["Retry-After", "WWW-Authenticate", TRACE_ID_HEADER],
            max_age=600,
        )
    return app


def _open(state: ApiState) -> None:
    """Open the shared components now rather than racing to on the first requests, and delete
    the uploads a crash left without a document (``uploads.py``). A store that cannot be opened
    is logged, not fatal: ``/readyz`` reports it."""
    c = state.container
    try:
        for component in ("store", "retriever", "pipeline", "traces", "tracer"):
            getattr(c, component)
        queued = _queued_uploads(c)  # issue 13: the files queued jobs will ingest are kept
        removed = (
            [] if queued is None else UploadArea(c.uploads_dir).remove_orphans(c.store, keep=queued)
        )
        if removed:
            log.warning("removed %d upload(s) left without a document by a crash", len(removed))
        _ = state.answerer.model  # the model (and the gateway under it) now, not on a question
    except RagkeelError as exc:
        log.error("ragkeel is not ready: %s", exc)


def _queued_uploads(c: Container) -> set[str] | None:
    """The uploads of jobs not done yet (none without a queue); None when the queue cannot be
    read: the orphan sweep is skipped rather than deleting what a job still needs."""
    if not c.queue_enabled:
        return set()
    try:
        return c.job_queue.pending_paths()
    except QueueError as exc:
        log.warning("orphaned uploads not swept: the job queue cannot be read: %s", exc)
        return None


def _monitor_views(container: Container) -> dict[str, Any]:
    """What the dashboard shows of the running monitor: its firing alerts and the last
    evaluation's drift verdicts (``observability/monitor/``)."""
    monitor = container.monitor

    def alerts() -> list[dict[str, Any]]:
        return [
            {"name": a.rule, "summary": a.summary, "severity": a.severity} for a in monitor.firing()
        ]

    def drift() -> list[dict[str, Any]]:
        last = monitor.last()
        if last is None:
            return []
        return [r.to_dict() for r in last.results if r.rule.endswith("_drift")]

    return {"alerts": alerts, "drift": drift}

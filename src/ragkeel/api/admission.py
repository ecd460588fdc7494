"""The HTTP side of admission (``ragkeel.admission``: the gates themselves, built by
``Container.admission``); a refusal is a 429 ``RATE_LIMITED`` (or 503 ``MODEL_BUSY``) problem
with ``Retry-After`` (``problems.py``).

- ``tenant_of(request)``: with auth required, the verified key's tenant (or the tenant its
  trusted proxy forwarded; ``auth.py``); with auth off, as before issue 11: a digest of
  ``Authorization: Bearer <anything>``, else the ``X-Tenant`` header, else ``anonymous``
  (``admission/gates.py``: ``tenant_from_headers``);
- ``LoadSheddingMiddleware``: the load shedder applied to the answer routes *before routing and
  body parsing*, and the refusal of new answers while draining (503 ``SHUTTING_DOWN``).

The routes ask the tenant limiter and the local model's queue through ``ApiState.admit``.

Every refusal is counted in ``ragkeel_admission_rejections_total`` by reason
(``count_rejection``; these requests record no trace): ``in_flight`` (the load shedder),
``shutting_down``, and from ``ApiState.admit`` ``tenant_limit``, ``streams``, ``model_busy``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from ragkeel.admission.gates import Admission, tenant_from_headers
from ragkeel.admission.load_shedder import LoadShedder
from ragkeel.api.auth import TENANT_HEADER, caller_of
from ragkeel.api.problems import problem, retry_after_header
from ragkeel.errors import (
    ModelBusyError,
    RateLimitedError,
    ShuttingDownError,
    TooManyStreamsError,
)

ANSWER_PATHS = frozenset({"/v1/query", "/v1/chat/completions"})
log = logging.getLogger("ragkeel.api")


def rejection_reason(exc: BaseException) -> str | None:
    """The ``reason`` label of an admission refusal (None: not one)."""
    if isinstance(exc, TooManyStreamsError):
        return "streams"
    if isinstance(exc, ModelBusyError):
        return "model_busy"
    if isinstance(exc, ShuttingDownError):
        return "shutting_down"
    if isinstance(exc, RateLimitedError):
        return "tenant_limit"
    return None


def count_rejection(state: Any, reason: str | None) -> None:
    """Count one refusal in the metrics of ``state`` (an ``ApiState``); never raises."""
    container = getattr(state, "container", None)
    if reason is None or container is None:
        return
    try:
        container.metrics.admission_rejected(reason)
    except Exception:  # a metric never fails the request
        log.warning("could not count an admission refusal", exc_info=True)


def tenant_of(request: Request) -> str:
    """Whose limits a request counts against: the key's tenant when it was verified, else a
    digest of the bearer string, else ``X-Tenant``, else ``anonymous``."""
    caller = caller_of(request)
    if caller.authenticated:
        return caller.access.tenant
    return tenant_from_headers(
        request.headers.get("authorization", ""), request.headers.get(TENANT_HEADER, "")
    )


class LoadSheddingMiddleware:
    """Applies ``Admission.shedder`` (read from ``app.state.ragkeel`` per request, so it can be
    installed unconditionally) to POSTs on ``paths``."""

    def __init__(self, app: ASGIApp, paths: Collection[str] = ANSWER_PATHS) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._draining(scope):  # shutting down: no new answer starts
            exc = ShuttingDownError()
            count_rejection(_state(scope), "shutting_down")
            response = problem(
                exc.status,
                exc.code,
                exc.message,
                instance=scope["path"],
                headers=retry_after_header(exc),
                extra={"hint": exc.hint},
            )
            await response(scope, receive, send)
            return
        shedder = self._shedder(scope)
        if shedder is None:
            await self.app(scope, receive, send)
            return
        try:  # a free slot now, or (with a queue) wait for one off the event loop
            permit = shedder.try_acquire()
            if permit is None:
                permit = await run_in_threadpool(shedder.acquire)
        except RateLimitedError as exc:
            count_rejection(_state(scope), "in_flight")
            extra = {"hint": exc.hint} if exc.hint else None
            response = problem(
                429,
                exc.code,
                exc.message,
                instance=scope["path"],
                headers=retry_after_header(exc),
                extra=extra,
            )
            await response(scope, receive, send)
            return
        with permit:  # released when the response is sent, failed, or the client left
            await self.app(scope, receive, send)

    def _answer_route(self, scope: Scope) -> bool:
        return scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths

    def _draining(self, scope: Scope) -> bool:
        state = getattr(scope["app"].state, "ragkeel", None) if scope["type"] == "http" else None
        return bool(getattr(state, "draining", False)) and self._answer_route(scope)

    def _shedder(self, scope: Scope) -> LoadShedder | None:
        if not self._answer_route(scope):
            return None
        state = getattr(scope["app"].state, "ragkeel", None)
        admission = getattr(state, "admission", None)
        return admission.shedder if isinstance(admission, Admission) else None


def _state(scope: Scope) -> Any:
    return getattr(scope["app"].state, "ragkeel", None)

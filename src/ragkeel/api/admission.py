"""Admission at the HTTP edge, before retrieval and before any model call; a refusal is a 429
``RATE_LIMITED`` problem with ``Retry-After`` (``errors.py``).

The tenant is the API key (``Authorization: Bearer <key>``), kept only as a SHA-256 digest
(``key-<16 hex>``: never the key itself, in memory, logs or the ledger); without a key, the
``X-Tenant`` header (trust it only behind a gateway that sets it), else ``anonymous``.

``Admission`` (on ``ApiState``) holds the gates of ``gateway/limits.py``; any may be off:

- the load shedder, a global cap on answers in flight, applied by ``LoadSheddingMiddleware``
  to the answer routes *before routing and body parsing*: a refusal is then a few dozen
  microseconds of Python, so it stays far under 5 ms even while the admitted answers' threads
  compete for the GIL; the slot is held until the response has been sent (or the client left);
- the tenant limiter (requests and tokens per minute, cost per day), asked by the routes
  (``ApiState.admit``) once the body says how many tokens the answer may use. The estimate is an
  upper bound (the context budget, the question and ``max_tokens``); the tokens actually used
  are counted when the answer ends (``Admitted.used_tokens`` then ``release``), however it ends;
- the local model's queue: when answers generate on the in-process local model (one generation
  at a time, ``generation.local.max_queue`` waiting), a generative answer holds one of
  ``1 + max_queue`` slots from admission to its end; past them the request is refused at once
  with 503 ``MODEL_BUSY`` and ``Retry-After``, before retrieval, instead of queueing behind
  answers that would eat its deadline (four concurrent questions once took 44, 81, 122 and
  144 s against a 120 s deadline, issue 9).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from ragkeel.api.errors import ShuttingDownError, problem, retry_after_header
from ragkeel.gateway.errors import ModelBusyError, RateLimitedError
from ragkeel.gateway.limits import LoadShedder, Permit, TenantLimiter, Ticket
from ragkeel.gateway.providers.local import BUSY_RETRY_AFTER_S

ANONYMOUS = "anonymous"
ANSWER_PATHS = frozenset({"/v1/query", "/v1/chat/completions"})
TENANT_HEADER = "x-tenant"
_CHARS_PER_TOKEN = 3  # a generous estimate for the question before it is tokenized


def tenant_of(request: Request) -> str:
    """Who is asking: a digest of the bearer key, else ``X-Tenant``, else ``anonymous``."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return "key-" + hashlib.sha256(key.strip().encode()).hexdigest()[:16]
    named = request.headers.get(TENANT_HEADER, "").strip()
    return named[:128] if named else ANONYMOUS


@dataclass(slots=True)
class Admitted:
    """A request let in: ``release`` when its answer has ended (idempotent)."""

    tenant: str
    ticket: Ticket | None = None
    limiter: TenantLimiter | None = None
    used_tokens: int = 0  # set when the answer's usage is known
    local_slot: Permit | None = None  # a place in the local model's queue
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def release(self) -> None:
        with self._lock:
            ticket, self.ticket = self.ticket, None
            slot, self.local_slot = self.local_slot, None
        if slot is not None:
            slot.release()
        if ticket is not None and self.limiter is not None:
            self.limiter.settle(ticket, self.used_tokens)


@dataclass(slots=True)
class Admission:
    limiter: TenantLimiter | None = None
    shedder: LoadShedder | None = None
    local: LoadShedder | None = None  # 1 + generation.local.max_queue slots (see above)

    def admit(
        self, request: Request, *, estimated_tokens: int = 0, local: bool = False
    ) -> Admitted:
        """Let the request in, or raise: ``ModelBusyError`` when it would generate on the local
        model (``local``) and its queue is full, ``RateLimitedError`` past the tenant's limits."""
        tenant = tenant_of(request)
        slot = self._local_slot() if local else None
        if self.limiter is None:
            return Admitted(tenant, local_slot=slot)
        try:
            ticket = self.limiter.admit(tenant, estimated_tokens=estimated_tokens)
        except BaseException:
            if slot is not None:
                slot.release()
            raise
        return Admitted(tenant, ticket, self.limiter, local_slot=slot)

    def _local_slot(self) -> Permit | None:
        if self.local is None:
            return None
        try:
            return self.local.try_acquire()  # no queue of its own: a permit or a refusal
        except RateLimitedError:
            waiting = self.local.max_in_flight - 1
            raise ModelBusyError(
                f"the local model is busy: one answer is generating and {waiting} "
                f"wait{'s' if waiting == 1 else ''} (generation.local.max_queue {waiting})",
                retry_after_s=BUSY_RETRY_AFTER_S,
            ) from None


class LoadSheddingMiddleware:
    """Applies ``Admission.shedder`` (read from ``app.state.ragkeel`` per request, so it can be
    installed unconditionally) to POSTs on ``paths``."""

    def __init__(self, app: ASGIApp, paths: Collection[str] = ANSWER_PATHS) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._draining(scope):  # shutting down: no new answer starts
            exc = ShuttingDownError()
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
        return (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.paths
        )

    def _draining(self, scope: Scope) -> bool:
        state = getattr(scope["app"].state, "ragkeel", None) if scope["type"] == "http" else None
        return bool(getattr(state, "draining", False)) and self._answer_route(scope)

    def _shedder(self, scope: Scope) -> LoadShedder | None:
        if not self._answer_route(scope):
            return None
        state = getattr(scope["app"].state, "ragkeel", None)
        admission = getattr(state, "admission", None)
        return admission.shedder if isinstance(admission, Admission) else None


def estimate_tokens(question: str, *, context_budget: int, max_tokens: int) -> int:
    """An upper bound of an answer's tokens before retrieval: the full context budget, the
    question (at ~3 characters a token) and every answer token."""
    return context_budget + len(question) // _CHARS_PER_TOKEN + 1 + max_tokens


def closing(cancel: Callable[[], None], admitted: Admitted) -> Callable[[], None]:
    """What a streamed answer does however it ends: ``cancel`` it, then leave admission."""

    def close() -> None:
        cancel()
        admitted.release()

    return close

"""``Admission``: the gates an answer passes before retrieval and before any model call. A
refusal is an exception the edge renders: ``RateLimitedError`` (429 ``RATE_LIMITED`` with
``Retry-After``) or ``ModelBusyError`` (503 ``MODEL_BUSY`` with ``Retry-After``).

The tenant is the API key, kept only as a SHA-256 digest (``key-<16 hex>``: never the key
itself, in memory, logs or the ledger); without a key, a tenant name the caller claims (the
API's ``X-Tenant`` header: trust it only behind a gateway that sets it), else ``anonymous``
(``tenant_from_headers``: plain header values in, so nothing here depends on HTTP types).

``Admission`` holds the gates; any may be off:

- the load shedder (``load_shedder.py``), a global cap on answers in flight. The API applies it
  *before routing and body parsing* (``api/admission.py``: ``LoadSheddingMiddleware``), so a
  refusal is a few dozen microseconds of Python and stays far under 5 ms even while the
  admitted answers' threads compete for the GIL; the slot is held until the response has been
  sent (or the client left);
- the tenant limiter (``tenant_limits.py``: requests and tokens per minute, cost per day),
  asked once the body says how many tokens the answer may use (``admit``). The estimate is an
  upper bound (``estimate_tokens``: the context budget, the question and ``max_tokens``); the
  tokens actually used are counted when the answer ends (``Admitted.used_tokens`` then
  ``release``), however it ends (``closing``);
- the local model's queue: when answers generate on the in-process local model (one generation
  at a time, ``generation.local.max_queue`` waiting), a generative answer holds one of
  ``1 + max_queue`` slots from admission to its end (``admit(..., local=True)``); past them the
  request is refused at once with ``ModelBusyError``, before retrieval, instead of queueing
  behind answers that would eat its deadline (four concurrent questions once took 44, 81, 122
  and 144 s against a 120 s deadline, issue 9);
- the stream limiter (``stream_limits.py``): at most ``api_limits.max_streams_per_tenant``
  streamed answers open at once per tenant (``admit(..., stream=True)``), refused with
  ``TooManyStreamsError`` (429 ``TOO_MANY_STREAMS``) past it; asked first, so a refused stream
  takes nothing from the other gates.

``Container.admission`` builds the gates from ``gateway.limits``, ``generation.local`` and
``api_limits``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ragkeel.admission.load_shedder import LoadShedder, Permit
from ragkeel.admission.stream_limits import StreamLimiter, StreamSlot
from ragkeel.admission.tenant_limits import TenantLimiter, Ticket
from ragkeel.errors import ModelBusyError, RateLimitedError

ANONYMOUS = "anonymous"
MAX_TENANT_NAME = 128
_CHARS_PER_TOKEN = 3  # a generous estimate for the question before it is tokenized


def tenant_from_headers(authorization: str = "", claimed: str = "") -> str:
    """Who is asking: a digest of the bearer key in ``authorization`` (the header's value),
    else the ``claimed`` tenant name, else ``anonymous``."""
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return "key-" + hashlib.sha256(key.strip().encode()).hexdigest()[:16]
    named = claimed.strip()
    return named[:MAX_TENANT_NAME] if named else ANONYMOUS


@dataclass(slots=True)
class Admitted:
    """A request let in: ``release`` when its answer has ended (idempotent)."""

    tenant: str
    ticket: Ticket | None = None
    limiter: TenantLimiter | None = None
    used_tokens: int = 0  # set when the answer's usage is known
    local_slot: Permit | None = None  # a place in the local model's queue
    stream_slot: StreamSlot | None = None  # one of the tenant's open streams
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def release(self) -> None:
        with self._lock:
            ticket, self.ticket = self.ticket, None
            slot, self.local_slot = self.local_slot, None
            stream, self.stream_slot = self.stream_slot, None
        if slot is not None:
            slot.release()
        if stream is not None:
            stream.release()
        if ticket is not None and self.limiter is not None:
            self.limiter.settle(ticket, self.used_tokens)


@dataclass(slots=True)
class Admission:
    limiter: TenantLimiter | None = None
    shedder: LoadShedder | None = None
    local: LoadShedder | None = None  # 1 + generation.local.max_queue slots (see above)
    streams: StreamLimiter | None = None  # api_limits.max_streams_per_tenant (see above)

    def admit(
        self,
        tenant: str,
        *,
        estimated_tokens: int = 0,
        local: bool = False,
        stream: bool = False,
    ) -> Admitted:
        """Let ``tenant``'s request in, or raise: ``TooManyStreamsError`` when it would stream
        (``stream``) and the tenant has its streams open already, ``ModelBusyError`` when it
        would generate on the local model (``local``) and its queue is full,
        ``RateLimitedError`` past the tenant's limits. A refusal gives back what was taken."""
        admitted = Admitted(tenant)
        if stream and self.streams is not None:
            admitted.stream_slot = self.streams.acquire(tenant)
        try:
            admitted.local_slot = self._local_slot() if local else None
            if self.limiter is not None:
                admitted.ticket = self.limiter.admit(tenant, estimated_tokens=estimated_tokens)
                admitted.limiter = self.limiter
        except BaseException:
            admitted.release()
            raise
        return admitted

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
            ) from None


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

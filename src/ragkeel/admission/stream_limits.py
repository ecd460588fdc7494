"""``StreamLimiter``: at most ``max_per_tenant`` streamed answers open at once per tenant (the
admission tenant: today the digest of the bearer key, later the API key's tenant, so the cap
follows whatever ``tenant_from_headers`` says). A stream holds its place from admission until it
ends however it ends (the route's ``closing``: done, failed, or the client left); past the cap
a new stream is refused at once with ``TooManyStreamsError`` (429 ``TOO_MANY_STREAMS``,
``Retry-After``), before retrieval. One caller holding many slow streams open cannot take every
answer slot of the server's global cap (``load_shedder.py``) from everyone else.

A refusal is a dict lookup under a lock (microseconds); a tenant with no stream open holds no
entry, so the table stays as small as the number of tenants streaming right now.
"""

from __future__ import annotations

import threading

from ragkeel.errors import TooManyStreamsError

RETRY_AFTER_S = 1.0


class StreamSlot:
    """One open stream of a tenant; ``release`` (idempotent) when it ends."""

    def __init__(self, limiter: StreamLimiter, tenant: str) -> None:
        self._limiter: StreamLimiter | None = limiter
        self.tenant = tenant

    def release(self) -> None:
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter._release(self.tenant)


class StreamLimiter:
    def __init__(self, max_per_tenant: int, *, retry_after_s: float = RETRY_AFTER_S) -> None:
        if max_per_tenant < 1:
            raise ValueError(f"max_per_tenant must be at least 1, got {max_per_tenant}")
        self.max_per_tenant = max_per_tenant
        self.retry_after_s = retry_after_s
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()
        self.rejected = 0

    def acquire(self, tenant: str) -> StreamSlot:
        """A slot for one more of ``tenant``'s streams, or ``TooManyStreamsError``."""
        with self._lock:
            held = self._open.get(tenant, 0)
            if held >= self.max_per_tenant:
                self.rejected += 1
                raise TooManyStreamsError(
                    f"this caller already has {held} streamed answers open; "
                    f"at most {self.max_per_tenant} are allowed at once "
                    "(api_limits.max_streams_per_tenant)",
                    hint="close a stream, or ask without streaming",
                    retry_after_s=self.retry_after_s,
                )
            self._open[tenant] = held + 1
        return StreamSlot(self, tenant)

    def open_streams(self, tenant: str) -> int:
        with self._lock:
            return self._open.get(tenant, 0)

    def _release(self, tenant: str) -> None:
        with self._lock:
            left = self._open.get(tenant, 0) - 1
            if left > 0:
                self._open[tenant] = left
            else:
                self._open.pop(tenant, None)

"""Shared state in Redis (issue 13): the one connection the shared backends use, and what each
does when Redis cannot be reached.

With ``redis.url`` set, the container (``Container.shared_state``) opens one ``SharedState``
and hands it to the backends that keep per-tenant or per-deployment state across
replicas; without it nothing here is imported or built and every piece stays in-process:

=========  ==========================================  ==========================================
use        backend (Redis)                             when Redis cannot be reached
=========  ==========================================  ==========================================
limits     ``admission/tenant_limits.py``: the         fail OPEN: the request is admitted (a
           ``limits`` library's ``RedisStorage``        limit is a protection, not a bill)
           (moving windows, one Lua script a hit)
accounts   ``admission/redis_accounts.py``:            fail CLOSED for paid calls:
           ``RedisCostAccounts``, reserve/settle as     ``BUDGET_UNAVAILABLE`` (the answer
           Lua scripts (atomic across processes)        degrades to the extractive one, never a
                                                        500); a call whose estimate is $0 (the
                                                        free local model) goes ahead
breakers   ``gateway/redis_breaker_store.py``:         fall back to this process's own
           ``RedisBreakerStore`` (WATCH/MULTI           in-memory breaker (today's behaviour):
           optimistic read-modify-write)                deployments stay protected per replica
cache      ``caching/redis_backend.py``: the answer    every lookup a miss, nothing stored: the
           cache (issue 14), SET PX + one Lua script    question is answered as without a cache
           that trims it to its size
=========  ==========================================  ==========================================

Every failure is one ``Outage.failed(use, error)``: a log line (the first of an outage at
WARNING with the error, then at most one every ``LOG_EVERY_S`` per use; "reachable again" at
INFO when an operation succeeds after one), one count in ``ragkeel_shared_state_errors_total``
by ``use`` (the ``on_error`` callback: the container wires it to ``Metrics``), and a pause of
``pause_s`` (``redis.retry_after_failure_s``) during which the backends do not ask Redis at all
and take their fallback at once (each such operation counted too) — so a Redis that hangs costs
one socket timeout per pause, not one per request. The pause is process-wide: when Redis is
down, it is down for every use.

Connections: one ``redis.ConnectionPool`` per process (``connect``), socket and connect
timeouts from ``redis.socket_timeout_s``/``redis.connect_timeout_s`` (default 0.5 s: a loopback
or LAN Redis answers in well under a millisecond), one immediate retry on a broken connection
(a pooled socket that a Redis restart closed), no backoff. Keys start with ``redis.key_prefix``
(default ``ragkeel:``), so several services can share one Redis database.

What stays in each process, on purpose (a replica's own resources, or a bound that already
scales with the replicas):

- the load shedder (``gateway.limits.max_in_flight``) and the local model's queue slots: they
  protect this process's CPU and its in-process model;
- open streams per tenant (``api_limits.max_streams_per_tenant``): they keep one caller from
  taking every answer slot of *this* replica's in-flight cap, which is per replica too;
- the gateway's retry budget (``gateway.retry.budget_ratio``): retries <= ratio x requests holds
  per replica, hence for their sum (only the small ``budget_min_retries`` floor adds up);
- the embedding cache (a file in each home): content-addressed, a miss only costs one embedding;
- estimates of tokens in flight (``tenant_limits.py``): settled tokens are shared.

The ``redis`` package (the ``scale`` extra) is imported only by ``connect``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from ragkeel.errors import ConfigError
from ragkeel.redaction import strip_url_credentials

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

Use = Literal["limits", "accounts", "breakers", "cache"]
USES: Final[tuple[Use, ...]] = ("limits", "accounts", "breakers", "cache")
LOG_EVERY_S: Final = 30.0


class Outage:
    """Failures of the shared store: logged, counted, and a pause before Redis is asked again.
    Thread-safe."""

    def __init__(
        self,
        *,
        pause_s: float = 1.0,
        on_error: Callable[[Use], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if pause_s < 0:
            raise ValueError(f"pause_s must not be negative, got {pause_s}")
        self.pause_s = pause_s
        self.on_error = on_error
        self._clock = clock
        self._lock = threading.Lock()
        self._down_until = -float("inf")
        self._down = False
        self._logged: dict[Use, float] = {}
        self.errors: dict[Use, int] = dict.fromkeys(USES, 0)

    def available(self) -> bool:
        """Whether to ask Redis now (False during the pause after a failure)."""
        with self._lock:
            return self._clock() >= self._down_until

    def failed(self, use: Use, error: BaseException | None = None) -> None:
        """One operation of ``use`` could not use Redis (``error``; None: skipped during the
        pause) and took its fallback."""
        now = self._clock()
        with self._lock:
            self.errors[use] += 1
            first = not self._down
            if error is not None:
                self._down, self._down_until = True, now + self.pause_s
            due = first or now - self._logged.get(use, -float("inf")) >= LOG_EVERY_S
            if due:
                self._logged[use] = now
        if due:
            what = strip_url_credentials(str(error)) if error is not None else "paused"
            log.warning(
                "shared state (Redis) unreachable for %s: %s; %s",
                use,
                what,
                _FALLBACK[use],
                exc_info=error is not None and first,
            )
        if self.on_error is not None:
            self.on_error(use)

    def succeeded(self) -> None:
        """An operation reached Redis: the outage (if any) is over."""
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            log.info("shared state (Redis) reachable again")


_FALLBACK: Final[dict[Use, str]] = {
    "limits": "admitting without the rate limit (fail open)",
    "accounts": "refusing paid model calls (fail closed; free ones go ahead)",
    "breakers": "using this process's own circuit breaker state",
    "cache": "answering without the shared answer cache (every question a miss)",
}


@dataclass(frozen=True, slots=True)
class SharedState:
    """What the shared backends get: the client, the key prefix, the outage tracker."""

    client: redis.Redis
    url: str = field(repr=False)
    prefix: str = "ragkeel:"
    outage: Outage = field(default_factory=Outage)

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def reachable(self) -> bool:
        """Whether Redis answers a ``PING`` now (``/readyz``); False during an outage's pause
        without asking. Not counted as a use's failure."""
        if not self.outage.available():
            return False
        try:
            self.client.ping()
        except Exception:  # any failure to answer is "not reachable"; the use that needs it logs
            return False
        self.outage.succeeded()
        return True

    def close(self) -> None:
        self.client.close()
        self.client.connection_pool.disconnect()


def connect(
    url: str,
    *,
    prefix: str = "ragkeel:",
    socket_timeout_s: float = 0.5,
    connect_timeout_s: float = 0.5,
    outage: Outage | None = None,
) -> SharedState:
    """A client over one connection pool for ``url`` (``redis://``, ``rediss://``,
    ``unix://``). Connects lazily: an unreachable Redis is an outage, not a start-up error."""
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:  # pragma: no cover - the scale extra is in dev
        raise ConfigError(
            "redis.url is set but the redis package is missing",
            hint="pip install 'ragkeel[scale]'",
        ) from exc
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": connect_timeout_s,
        "retry": Retry(NoBackoff(), 1),
        "health_check_interval": 0,
    }
    try:
        pool = redis.ConnectionPool.from_url(url, **options)
    except ValueError as exc:
        raise ConfigError(
            f"redis.url is not a Redis URL: {strip_url_credentials(url)!r} ({exc})",
            hint="redis://[:password@]host:port/db, rediss://... or unix:///path/to.sock",
        ) from exc
    return SharedState(
        redis.Redis(connection_pool=pool), url, prefix, outage if outage is not None else Outage()
    )

"""``TenantLimiter``: per tenant (API key), requests per window and tokens per window (moving
windows from the ``limits`` library: in memory, or in Redis with ``redis.url``), and cost per day (``CostAccounts``: a tenant
with nothing left of today's budget is refused until 00:00 UTC). It runs before retrieval and
before any provider call, takes microseconds, and refuses with ``RateLimitedError`` (code
``RATE_LIMITED``, ``retry_after_s`` set; the API answers 429 with ``Retry-After``).

Tokens are known only after the call, so admission works on an estimate: ``admit(tenant,
estimated_tokens=n)`` lets the request in if the tokens used in the window, plus the estimates
of the tenant's requests still in flight, plus ``n`` fit; ``settle(ticket, used_tokens)`` then
drops the estimate and counts the tokens actually used. (A moving window cannot take tokens
back, so usage is only ever counted once it is known; usage past a full window is not carried
over.) The check and the bookkeeping happen under one lock, so concurrent requests cannot all
squeeze into one gap.

Shared by replicas (issue 13): with ``storage=shared_storage(shared)`` the windows live in
Redis (the ``limits`` library's ``RedisStorage``, one Lua script per hit), so a tenant's
requests per window hold across every process that shares the Redis. The tokens counted in a
window are shared too; the estimates of requests still in flight are each process's own (so
replicas admitting at the same instant can overshoot a token limit by what they hold in flight
together). The cost check asks the accounts, shared when they are ``RedisCostAccounts``.

Redis unreachable: the limiter fails OPEN (``outage``, ``shared_state.py``): the request is
admitted without the window checks, with a log line and a count in
``ragkeel_shared_state_errors_total{use="limits"}``; tokens used meanwhile are not counted. A
cost check whose shared accounts cannot be read lets the request in too: the budget policy
then refuses the paid call itself (accounts fail closed, ``redis_accounts.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, MovingWindowSupport, RedisStorage
from limits.strategies import MovingWindowRateLimiter

from ragkeel.admission.accounts import Accounts
from ragkeel.errors import BudgetUnavailableError, RateLimitedError
from ragkeel.shared_state import Outage, SharedState

MIN_RETRY_AFTER_S = 0.001
T = TypeVar("T")


def shared_storage(shared: SharedState) -> RedisStorage:
    """The ``limits`` library's Redis storage over ``shared``'s connection pool and key prefix;
    its errors come out as ``limits.errors.StorageError`` (the limiter fails open on them)."""
    return RedisStorage(
        shared.url,
        connection_pool=shared.client.connection_pool,
        key_prefix=shared.key("limits"),
        wrap_exceptions=True,
    )


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """Per tenant, per ``window_s`` seconds (``None``: unlimited)."""

    requests: int | None = 60
    tokens: int | None = None
    window_s: int = 60

    def __post_init__(self) -> None:
        for value in (self.requests, self.tokens):
            if value is not None and value < 1:
                raise ValueError(f"a limit must be at least 1 (or None), got {value}")
        if self.window_s < 1:
            raise ValueError(f"window_s must be at least 1, got {self.window_s}")

    def items(self) -> tuple[RateLimitItem | None, RateLimitItem | None]:
        def item(amount: int | None) -> RateLimitItem | None:
            return RateLimitItemPerSecond(amount, self.window_s) if amount is not None else None

        return item(self.requests), item(self.tokens)


@dataclass(slots=True)
class Ticket:
    """An admitted request; ``settle`` it with the tokens it used."""

    tenant: str
    estimated_tokens: int
    settled: bool = field(default=False, compare=False)


class TenantLimiter:
    def __init__(
        self,
        limits: TenantLimits | None = None,
        *,
        per_tenant: Mapping[str, TenantLimits] | None = None,
        accounts: Accounts | None = None,
        storage: MovingWindowSupport | None = None,
        outage: Outage | None = None,
    ) -> None:
        """``storage``: where the windows live (default: this process's memory); ``outage``:
        how failures of a shared ``storage`` are reported (the limiter then fails open)."""
        self.limits = limits or TenantLimits()
        self.per_tenant = dict(per_tenant or {})
        self.accounts = accounts
        self._window = MovingWindowRateLimiter(storage or MemoryStorage())  # type: ignore[arg-type]
        self._outage = outage
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}  # tenant -> estimated tokens of admitted requests

    def limits_for(self, tenant: str) -> TenantLimits:
        return self.per_tenant.get(tenant, self.limits)

    def admit(self, tenant: str, *, estimated_tokens: int = 0) -> Ticket:
        """Count one request for ``tenant``; ``RateLimitedError`` if a limit is reached."""
        self._check_cost(tenant)
        limits = self.limits_for(tenant)
        requests, tokens = limits.items()
        with self._lock:
            held = self._in_flight.get(tenant, 0)

            def check() -> None:
                if tokens is not None:
                    self._check_tokens(tenant, tokens, held, estimated_tokens)
                if requests is not None and not self._window.hit(requests, tenant, "requests"):
                    raise RateLimitedError(
                        f"tenant {tenant!r} sent more than {limits.requests} requests "
                        f"in {limits.window_s} s",
                        hint="slow down and retry after Retry-After seconds",
                        retry_after_s=self._retry_after(requests, tenant, "requests"),
                    )

            self._guard(check, None)
            self._in_flight[tenant] = held + estimated_tokens
        return Ticket(tenant, estimated_tokens)

    def settle(self, ticket: Ticket, used_tokens: int) -> None:
        """Drop the ticket's estimate and count ``used_tokens``; settling twice is a no-op."""
        _, tokens = self.limits_for(ticket.tenant).items()
        with self._lock:
            if ticket.settled:
                return
            ticket.settled = True
            left = self._in_flight.get(ticket.tenant, 0) - ticket.estimated_tokens
            if left > 0:
                self._in_flight[ticket.tenant] = left
            else:
                self._in_flight.pop(ticket.tenant, None)
            if tokens is not None and used_tokens > 0:
                self._guard(lambda: self._count_tokens(tokens, ticket.tenant, used_tokens), None)

    def _count_tokens(self, item: RateLimitItem, tenant: str, used: int) -> None:
        room = self._window.get_window_stats(item, tenant, "tokens").remaining
        if room > 0:
            self._window.hit(item, tenant, "tokens", cost=min(used, room))

    def _guard(self, op: Callable[[], T], fallback: T) -> T:
        """``op`` on the windows; with a shared storage that fails, ``fallback`` (fail open)."""
        outage = self._outage
        if outage is None:
            return op()
        if not outage.available():
            outage.failed("limits")
            return fallback
        try:
            result = op()
        except StorageError as exc:
            outage.failed("limits", exc.storage_error)
            return fallback
        outage.succeeded()
        return result

    def tokens_in_flight(self, tenant: str) -> int:
        """Estimated tokens of the tenant's admitted requests not settled yet."""
        with self._lock:
            return self._in_flight.get(tenant, 0)

    def tokens_used(self, tenant: str) -> int:
        """Tokens counted (settled) in the tenant's current window; 0 without a token limit."""
        _, tokens = self.limits_for(tenant).items()
        if tokens is None:
            return 0
        with self._lock:
            stats = self._guard(
                lambda: self._window.get_window_stats(tokens, tenant, "tokens"), None
            )
            return tokens.amount - stats.remaining if stats is not None else 0

    def _check_cost(self, tenant: str) -> None:
        accounts = self.accounts
        if accounts is None or accounts.budget(tenant) is None:
            return
        try:
            if accounts.remaining(tenant) > 0:
                return
        except BudgetUnavailableError:
            return  # fail open here: the budget policy refuses the paid call itself
        raise RateLimitedError(
            f"tenant {tenant!r} has spent its daily cost budget of ${accounts.budget(tenant):.4f}",
            hint="the budget resets at 00:00 UTC",
            retry_after_s=accounts.seconds_until_reset(),
        )

    def _check_tokens(self, tenant: str, item: RateLimitItem, held: int, wanted: int) -> None:
        if wanted > item.amount:
            raise RateLimitedError(
                f"this request may use {wanted} tokens, more than tenant {tenant!r} may use "
                f"in {item.get_expiry()} s ({item.amount})",
                hint="ask for fewer answer tokens (max_tokens) or a shorter context",
                retry_after_s=float(item.get_expiry()),
            )
        stats = self._window.get_window_stats(item, tenant, "tokens")
        used = item.amount - stats.remaining
        if used + held + wanted > item.amount:
            raise RateLimitedError(
                f"tenant {tenant!r} is over its limit of {item.amount} tokens in "
                f"{item.get_expiry()} s ({used} used, {held} held by requests in flight, "
                f"{wanted} asked)",
                hint="slow down and retry after Retry-After seconds",
                retry_after_s=max(stats.reset_time - time.time(), MIN_RETRY_AFTER_S)
                if used
                else MIN_RETRY_AFTER_S,
            )

    def _retry_after(self, item: RateLimitItem, *identifiers: str) -> float:
        reset = self._window.get_window_stats(item, *identifiers).reset_time
        return max(reset - time.time(), MIN_RETRY_AFTER_S)

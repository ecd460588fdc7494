"""``CostAccounts``: each tenant's spend against its daily budget (USD per UTC day), exact under
concurrency.

A call first *reserves* its estimated maximum cost (``reserve``, atomic under one lock): the
reservation is refused with ``BudgetExceededError`` when spent + outstanding reservations + the
new one would pass the tenant's budget. After the call the reservation is *settled* with what
the call actually cost (``settle``: success, failure or cancellation alike; settling twice is a
no-op), so the reserved amount is released and the real cost is booked. As long as no call
costs more than it reserved, the booked spend can never pass the budget, however many requests
run at once: the check and the reservation happen together.

``Accounts`` is what the budget policy and the tenant limiter use; ``CostAccounts`` keeps the
accounts in this process (the default), ``RedisCostAccounts`` (``redis_accounts.py``, with
``redis.url``) in Redis, shared by every replica, with the same rules.

Days are UTC days on a wall clock (``wall``: Unix seconds, injectable for tests). The first
time a tenant's day is touched, its spend starts from ``source.spent(tenant, day)`` (the cost
ledger), so a restarted server keeps counting instead of granting a fresh budget.
"""

from __future__ import annotations

import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from ragkeel.errors import BudgetExceededError

_Key = tuple[str, date]


class SpendSource(Protocol):
    """Where a day's spend so far comes from after a restart (``SqliteCostLedger``)."""

    def spent(self, tenant: str, day: date) -> float: ...


class CostSink(Protocol):
    """Where each model call's cost is written (``SqliteCostLedger.record``)."""

    def record(
        self,
        *,
        tenant: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost: float,
        outcome: str,
        request_id: str | None = None,
        rung: int | None = None,
        ts: float | None = None,
    ) -> None: ...


@dataclass(slots=True)
class Reservation:
    tenant: str
    day: date
    amount: float
    settled: bool = field(default=False, compare=False)
    id: str = field(default="", compare=False)  # a shared store's name for it


class Accounts(ABC):
    """Daily budgets per tenant: ``per_tenant`` overrides ``daily_budget`` (``None``: no limit,
    spend is still counted). The day and the budgets are common to every backend; where the
    spend and the reservations are kept is the backend's."""

    def __init__(
        self,
        daily_budget: float | None = None,
        *,
        per_tenant: Mapping[str, float] | None = None,
        source: SpendSource | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        for value in [daily_budget, *(per_tenant or {}).values()]:
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"a daily budget must be finite and non-negative, got {value}")
        self.daily_budget = daily_budget
        self.per_tenant = dict(per_tenant or {})
        self._source = source
        self._wall = wall
        self._open_books()

    @abstractmethod
    def _open_books(self) -> None:
        """Set up where the backend keeps its books (called last by ``__init__``)."""

    def budget(self, tenant: str) -> float | None:
        return self.per_tenant.get(tenant, self.daily_budget)

    def now(self) -> float:
        """Unix seconds on the accounts' wall clock (the ledger dates its rows with it too)."""
        return self._wall()

    def today(self) -> date:
        return datetime.fromtimestamp(self._wall(), UTC).date()

    def seconds_until_reset(self) -> float:
        """Until the next UTC midnight, when every daily budget starts again."""
        now = datetime.fromtimestamp(self._wall(), UTC)
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        return (midnight - now).total_seconds()

    @abstractmethod
    def spent(self, tenant: str) -> float:
        """Booked (settled) spend today."""

    @abstractmethod
    def reserved(self, tenant: str) -> float:
        """Outstanding reservations today."""

    @abstractmethod
    def open_reservations(self) -> int:
        """Reservations not settled yet."""

    @abstractmethod
    def remaining(self, tenant: str) -> float:
        """What today's budget still allows (``inf`` without one; never negative)."""

    @abstractmethod
    def reserve(self, tenant: str, amount: float) -> Reservation:
        """Hold ``amount`` USD of today's budget; ``BudgetExceededError`` if it does not fit."""

    @abstractmethod
    def settle(self, reservation: Reservation, actual: float) -> None:
        """Release the reservation and book ``actual`` (on the reservation's day); settling
        twice is a no-op."""

    def refusal(
        self, tenant: str, amount: float, limit: float, spent: float, held: float
    ) -> BudgetExceededError:
        left = max(limit - spent - held, 0.0)
        return BudgetExceededError(
            f"tenant {tenant!r} has ${left:.6f} left of its daily budget ${limit:.6f} "
            f"(spent ${spent:.6f}, ${held:.6f} held by calls in flight); this call may cost "
            f"up to ${amount:.6f}",
            hint="try again after the budget resets at 00:00 UTC, or raise the daily budget",
            retry_after_s=self.seconds_until_reset(),
        )


def check_amount(amount: float) -> None:
    if not math.isfinite(amount) or amount < 0:
        raise ValueError(f"a reservation must be finite and non-negative, got {amount}")


class CostAccounts(Accounts):
    """``Accounts`` in this process, exact under threads (one lock)."""

    def _open_books(self) -> None:
        self._lock = threading.Lock()
        self._spent: dict[_Key, float] = {}
        self._reserved: dict[_Key, float] = {}
        self._open: dict[_Key, int] = {}

    def spent(self, tenant: str) -> float:
        """Booked (settled) spend today."""
        with self._lock:
            return self._load((tenant, self.today()))

    def reserved(self, tenant: str) -> float:
        """Outstanding reservations today."""
        with self._lock:
            return self._reserved.get((tenant, self.today()), 0.0)

    def open_reservations(self) -> int:
        """Reservations not settled yet, over all tenants and days."""
        with self._lock:
            return sum(self._open.values())

    def remaining(self, tenant: str) -> float:
        """What today's budget still allows (``inf`` without one; never negative)."""
        limit = self.budget(tenant)
        if limit is None:
            return math.inf
        key = (tenant, self.today())
        with self._lock:
            return max(limit - self._load(key) - self._reserved.get(key, 0.0), 0.0)

    def reserve(self, tenant: str, amount: float) -> Reservation:
        """Hold ``amount`` USD of today's budget; ``BudgetExceededError`` if it does not fit."""
        check_amount(amount)
        key = (tenant, self.today())
        limit = self.budget(tenant)
        with self._lock:
            spent, held = self._load(key), self._reserved.get(key, 0.0)
            if limit is not None and spent + held + amount > limit:
                raise self.refusal(tenant, amount, limit, spent, held)
            self._reserved[key] = held + amount
            self._open[key] = self._open.get(key, 0) + 1
        return Reservation(tenant, key[1], amount)

    def settle(self, reservation: Reservation, actual: float) -> None:
        """Release the reservation and book ``actual`` (on the reservation's day)."""
        key = (reservation.tenant, reservation.day)
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            self._open[key] -= 1
            left = self._reserved[key] - reservation.amount
            self._reserved[key] = 0.0 if self._open[key] == 0 else max(left, 0.0)
            self._spent[key] = self._load(key) + max(actual, 0.0)

    def _load(self, key: _Key) -> float:
        """Spend booked for ``key`` (caller holds the lock), from the source the first time."""
        if key not in self._spent:
            self._spent[key] = self._source.spent(*key) if self._source else 0.0
        return self._spent[key]

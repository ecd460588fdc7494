"""``RedisCostAccounts``: each tenant's daily cost account in Redis, shared by every replica
(``redis.url``; issue 13), with ``CostAccounts``' rules (``accounts.py``): a reservation is
refused when spent + held + the new one would pass the budget, settlement releases it and
books the actual cost; both are one Lua script each, so the check and the write are atomic
across processes and replicas never overspend together what one could not alone.

Keys, per tenant and UTC day (one hash tag, so a Redis Cluster keeps them on one node; they
expire two days after the last write)::

    <prefix>budget:{<tenant>:<day>}:spent     booked spend, USD (INCRBYFLOAT)
    <prefix>budget:{<tenant>:<day>}:held      reservation id -> amount
    <prefix>budget:{<tenant>:<day>}:leases    reservation id -> when it lapses (Unix s)
    <prefix>budget:{<tenant>:<day>}:settled   ids settled already: settling twice is a no-op

A reservation is a lease: one not settled within ``lease_s`` (``redis.reservation_lease_s``,
default 900 s, far past ``gateway.request_deadline_s``) is freed by the next script that
touches the account, so a replica killed mid-call cannot hold a tenant's budget for the rest
of the day. The day's spend is seeded once from ``source`` (the cost ledger), the first time
any process finds the ``spent`` key missing (``SET NX``: the first seed wins), so neither a
restart nor a flushed Redis grants a fresh budget.

Redis unreachable (``shared_state.py``, counted as ``use="accounts"``): accounts fail CLOSED.
``remaining`` and ``reserve`` raise ``BudgetUnavailableError`` (``BUDGET_UNAVAILABLE``: the
budget policy refuses the paid call and the answer flow degrades to the extractive answer,
never a 500), except for what cannot overspend: a tenant without a budget, and a call whose
estimate is $0 (the free local model: ``gateway/budget.py`` plans with nothing left, so only a
free option fits) get a reservation kept in this process only. ``settle`` never raises: a
settlement Redis does not take is kept and replayed, in order, before this process's next
operation that reaches Redis (its reservation lapses meanwhile; the ledger has the row anyway).
``open_reservations`` counts this process's unsettled reservations.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, Final, TypeVar

import redis

from ragkeel.admission.accounts import Accounts, Reservation, SpendSource, check_amount
from ragkeel.errors import BudgetUnavailableError
from ragkeel.shared_state import SharedState

T = TypeVar("T")
TTL_S: Final = 2 * 24 * 3600
LEASE_S: Final = 900.0

# KEYS: spent, held, leases, settled. Frees lapsed leases (ARGV[1] = now); -1 when unseeded.
_PRUNE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
for _, id in ipairs(lapsed) do redis.call('HDEL', KEYS[2], id) end
if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1]) end
return 0
"""
_TOUCH = """
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[#ARGV]) end
"""
# ARGV: now, id, amount, limit ('' = none), lapses at, ttl -> {1|0, spent, held} or {-1}
RESERVE: Final = f"""
local function prune() {_PRUNE} end
if prune() == -1 then return {{-1}} end
local spent = tonumber(redis.call('GET', KEYS[1]))
local held = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do held = held + tonumber(v) end
local amount = tonumber(ARGV[3])
if ARGV[4] ~= '' and spent + held + amount > tonumber(ARGV[4]) then
  return {{0, tostring(spent), tostring(held)}}
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
{_TOUCH}
return {{1, tostring(spent), tostring(held)}}
"""
# ARGV: now, id, actual, ttl -> 1 booked, 0 settled before, -1 unseeded
SETTLE: Final = f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('SADD', KEYS[4], ARGV[2]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('INCRBYFLOAT', KEYS[1], ARGV[3])
{_TOUCH}
return 1
"""
# ARGV: now -> {spent, held amounts...} or {-1}
READ: Final = f"""
local function prune() {_PRUNE} end
if prune() == -1 then return {{-1}} end
local out = {{redis.call('GET', KEYS[1])}}
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do out[#out + 1] = v end
return out
"""


class RedisCostAccounts(Accounts):
    """``Accounts`` in Redis; thread-safe."""

    def __init__(
        self,
        shared: SharedState,
        daily_budget: float | None = None,
        *,
        per_tenant: Mapping[str, float] | None = None,
        source: SpendSource | None = None,
        wall: Callable[[], float] = time.time,
        lease_s: float = LEASE_S,
    ) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {lease_s}")
        self._shared = shared
        self.lease_s = lease_s
        client = shared.client
        self._scripts = {
            name: client.register_script(text)
            for name, text in (("reserve", RESERVE), ("settle", SETTLE), ("read", READ))
        }
        super().__init__(daily_budget, per_tenant=per_tenant, source=source, wall=wall)

    def _open_books(self) -> None:
        """The books are in Redis; here only this process's count and its pending settlements."""
        self._lock = threading.Lock()
        self._open = 0
        self._pending: list[tuple[Reservation, float]] = []  # settlements to replay

    # -- reading --------------------------------------------------------------------------

    def spent(self, tenant: str) -> float:
        return self._read(tenant)[0]

    def reserved(self, tenant: str) -> float:
        return self._read(tenant)[1]

    def open_reservations(self) -> int:
        with self._lock:
            return self._open

    def remaining(self, tenant: str) -> float:
        limit = self.budget(tenant)
        if limit is None:
            return math.inf
        spent, held = self._read(tenant)
        return max(limit - spent - held, 0.0)

    def _read(self, tenant: str) -> tuple[float, float]:
        day = self.today()
        out = self._redis(lambda: self._run("read", tenant, day, [repr(self._wall())]))
        return float(out[0]), math.fsum(float(v) for v in out[1:])

    # -- reserving and settling -----------------------------------------------------------

    def reserve(self, tenant: str, amount: float) -> Reservation:
        check_amount(amount)
        day, limit, now = self.today(), self.budget(tenant), self._wall()
        made = Reservation(tenant, day, amount, id=uuid.uuid4().hex)
        args = [repr(now), made.id, repr(amount), "" if limit is None else repr(limit)]
        args.append(repr(now + self.lease_s))
        try:
            out = self._redis(lambda: self._run("reserve", tenant, day, args))
        except BudgetUnavailableError:
            if amount > 0 and limit is not None:
                raise  # fail closed: a paid call nobody can count
            out = [1]  # free, or no budget to keep: this process's own reservation
        if int(out[0]) == 0:
            assert limit is not None
            raise self.refusal(tenant, amount, limit, float(out[1]), float(out[2]))
        with self._lock:
            self._open += 1
        return made

    def settle(self, reservation: Reservation, actual: float) -> None:
        with self._lock:
            if reservation.settled:
                return
            reservation.settled = True
            self._open -= 1
            self._pending.append((reservation, max(actual, 0.0)))
        # replays what is pending, this settlement included; if Redis cannot take it now, it
        # stays pending and the next operation that reaches Redis replays it
        with contextlib.suppress(BudgetUnavailableError):
            self._redis(lambda: None)

    # -- Redis ----------------------------------------------------------------------------

    def _redis(self, op: Callable[[], T]) -> T:
        """``op`` after the pending settlements, or ``BudgetUnavailableError`` (counted)."""
        outage = self._shared.outage
        if not outage.available():
            outage.failed("accounts")
            raise self._unavailable()
        try:
            self._replay()
            result = op()
        except (redis.RedisError, OSError) as exc:
            outage.failed("accounts", exc)
            raise self._unavailable() from exc
        outage.succeeded()
        return result

    def _replay(self) -> None:
        """Book the pending settlements (each at most once: the script remembers its id; their
        order does not matter, bookings add up)."""
        while True:
            with self._lock:
                if not self._pending:
                    return
                reservation, actual = item = self._pending.pop(0)
            try:
                args = [repr(self._wall()), reservation.id, repr(actual)]
                self._run("settle", reservation.tenant, reservation.day, args)
            except BaseException:
                with self._lock:
                    self._pending.insert(0, item)
                raise

    def _run(self, script: str, tenant: str, day: date, args: list[str]) -> Any:
        """Run one script on the tenant's day; seed the day from ``source`` if Redis has no
        account for it yet (a first touch, an expired or flushed key) and run it again."""
        keys = [
            self._shared.key("budget", f"{{{tenant}:{day.isoformat()}}}", part) for part in _PARTS
        ]
        for _ in range(2):
            out = self._scripts[script](keys=keys, args=[*args, str(TTL_S)])
            if (out[0] if isinstance(out, list) else out) != -1:
                return out
            seed = self._source.spent(tenant, day) if self._source else 0.0
            self._shared.client.set(keys[0], repr(float(seed)), nx=True, ex=TTL_S)
        raise redis.RedisError(f"the account of {tenant!r} on {day} could not be seeded")

    def _unavailable(self) -> BudgetUnavailableError:
        return BudgetUnavailableError(
            "the daily cost accounts (Redis) cannot be reached: paid model calls are refused "
            "until they are back",
            retry_after_s=max(self._shared.outage.pause_s, 1.0),
        )


_PARTS: Final = ("spent", "held", "leases", "settled")

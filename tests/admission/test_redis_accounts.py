"""``RedisCostAccounts`` (``admission/redis_accounts.py``): the rules of ``CostAccounts``, run
over both backends; reservations that lapse; several real processes hammering reserve/settle on
one budget never overspend it; Redis stopped mid-test (paid calls refused, free ones go ahead,
settlements replayed, never an exception out of ``settle``)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from processes import OwnRedis, race
from ragkeel.admission.accounts import Accounts, CostAccounts
from ragkeel.admission.redis_accounts import RedisCostAccounts
from ragkeel.errors import BudgetExceededError, BudgetUnavailableError
from ragkeel.gateway.base import ChatMessage, ChatRequest
from ragkeel.gateway.budget import BudgetChatModel
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.metering import MeteredChatModel
from ragkeel.gateway.pricing import Price, PriceTable
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.shared_state import Outage, SharedState, connect

NOON = 1_767_268_800.0  # 2026-01-01 12:00 UTC
DAY = date(2026, 1, 1)


class Wall:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Ledger:
    """A ``SpendSource``: what the cost ledger says a tenant spent on a day."""

    def __init__(self, spent: dict[tuple[str, date], float] | None = None) -> None:
        self.rows = spent or {}
        self.asked = 0

    def spent(self, tenant: str, day: date) -> float:
        self.asked += 1
        return self.rows.get((tenant, day), 0.0)


@pytest.fixture
def shared(redis_url: str) -> Iterator[SharedState]:
    state = connect(redis_url, prefix="test:")
    yield state
    state.close()


@pytest.fixture(params=["memory", "redis"])
def make(request: pytest.FixtureRequest) -> Iterator[type[Accounts] | object]:
    """Builds the accounts under test: ``make(budget, source=..., wall=...)``."""
    if request.param == "memory":
        yield CostAccounts
        return
    shared: SharedState = request.getfixturevalue("shared")

    def build(*args: object, **kw: object) -> RedisCostAccounts:
        return RedisCostAccounts(shared, *args, **kw)  # type: ignore[arg-type]

    yield build


def test_reserve_refuses_what_does_not_fit_and_settle_books(make: type[CostAccounts]) -> None:
    wall = Wall()
    accounts = make(1.0, wall=wall)
    first = accounts.reserve("t", 0.75)
    assert accounts.reserved("t") == pytest.approx(0.75)
    with pytest.raises(BudgetExceededError, match=r"\$0\.250000 left"):
        accounts.reserve("t", 0.5)
    accounts.settle(first, 0.5)
    accounts.settle(first, 0.5)  # twice: a no-op
    assert accounts.spent("t") == pytest.approx(0.5)
    assert accounts.reserved("t") == 0.0
    assert accounts.remaining("t") == pytest.approx(0.5)
    assert accounts.open_reservations() == 0
    assert accounts.remaining("other") == pytest.approx(1.0)  # tenants are independent


def test_a_day_starts_from_the_ledger_and_ends_at_midnight(make: type[CostAccounts]) -> None:
    wall = Wall()
    ledger = Ledger({("t", DAY): 0.9})
    accounts = make(1.0, source=ledger, wall=wall)
    assert accounts.remaining("t") == pytest.approx(0.1)
    with pytest.raises(BudgetExceededError):
        accounts.reserve("t", 0.2)
    wall.now += 12 * 3600  # 2026-01-02 00:00 UTC: a fresh day
    assert accounts.remaining("t") == pytest.approx(1.0)
    assert accounts.seconds_until_reset() == pytest.approx(24 * 3600)


def test_without_a_budget_spend_is_still_counted(make: type[CostAccounts]) -> None:
    accounts = make(None, wall=Wall())
    accounts.settle(accounts.reserve("t", 3.0), 2.5)
    assert accounts.remaining("t") == math.inf
    assert accounts.spent("t") == pytest.approx(2.5)


def test_a_reservation_never_settled_lapses(shared: SharedState) -> None:
    """A replica killed mid-call cannot hold the budget for the rest of the day."""
    wall = Wall()
    accounts = RedisCostAccounts(shared, 1.0, wall=wall, lease_s=60.0)
    accounts.reserve("t", 0.9)  # never settled
    assert accounts.remaining("t") == pytest.approx(0.1)
    wall.now += 61
    assert accounts.remaining("t") == pytest.approx(1.0)
    accounts.reserve("t", 0.9)


def test_two_replicas_share_one_account(shared: SharedState, redis_url: str) -> None:
    other = connect(redis_url, prefix="test:")
    ledger = Ledger({("t", DAY): 0.25})
    a = RedisCostAccounts(shared, 1.0, source=ledger, wall=Wall())
    b = RedisCostAccounts(other, 1.0, source=ledger, wall=Wall())
    try:
        held = a.reserve("t", 0.5)
        with pytest.raises(BudgetExceededError):
            b.reserve("t", 0.5)  # 0.25 spent + 0.5 held by A: 0.25 left
        a.settle(held, 0.125)
        assert b.spent("t") == pytest.approx(0.375)
        assert ledger.asked == 1  # seeded once, by whoever touched the day first
    finally:
        other.close()


# one process: reserve and settle until refused ROUNDS times; print what it booked
_HAMMER = """
import json, random, sys
from ragkeel.admission.redis_accounts import RedisCostAccounts
from ragkeel.errors import BudgetExceededError
from ragkeel.shared_state import connect
start, url, budget = float(sys.argv[1]), sys.argv[2], float(sys.argv[3])
import time
accounts = RedisCostAccounts(connect(url, prefix="test:"), budget)
rng = random.Random(int(sys.argv[4]))
time.sleep(max(start - time.time(), 0))
booked, refused = [], 0
while refused < 20:
    amount = rng.choice([0.01, 0.02, 0.05, 0.1])
    try:
        held = accounts.reserve("tenant", amount)
    except BudgetExceededError:
        refused += 1
        continue
    actual = amount if rng.random() < 0.7 else amount / 2
    accounts.settle(held, actual)
    booked.append(actual)
print(json.dumps(booked))
"""


def test_many_processes_never_overspend_one_budget(shared: SharedState, redis_url: str) -> None:
    processes, budget = 6, 3.0
    outs = race(_HAMMER, [[redis_url, str(budget), str(seed)] for seed in range(processes)])
    booked: list[float] = [actual for out in outs for actual in json.loads(out)]
    accounts = RedisCostAccounts(shared, budget)
    assert accounts.spent("tenant") == pytest.approx(math.fsum(booked), abs=1e-9)
    assert accounts.spent("tenant") <= budget + 1e-9
    assert accounts.spent("tenant") > budget - 0.1  # they did fill it: a real race
    assert accounts.reserved("tenant") == 0.0


def test_redis_stopped_mid_test_fails_closed_for_paid_calls(tmp_path: Path) -> None:
    server = OwnRedis(tmp_path / "redis")
    counted: list[str] = []
    shared = connect(
        server.url, prefix="test:", outage=Outage(pause_s=0.2, on_error=counted.append)
    )
    accounts = RedisCostAccounts(shared, 1.0)
    unlimited = RedisCostAccounts(shared, None)  # no budget to keep: nothing to refuse
    try:
        before = accounts.reserve("t", 0.25)  # made while Redis is up
        server.stop()
        began = time.monotonic()
        with pytest.raises(BudgetUnavailableError) as refused:
            accounts.reserve("t", 0.1)  # a paid call: refused
        assert refused.value.code == "BUDGET_UNAVAILABLE" and refused.value.retry_after_s
        with pytest.raises(BudgetUnavailableError):
            accounts.remaining("t")
        free = accounts.reserve("t", 0.0)  # the free local model: goes ahead
        accounts.settle(free, 0.0)
        unlimited.settle(unlimited.reserve("t", 0.5), 0.5)
        accounts.settle(before, 0.2)  # never raises; kept for replay
        assert accounts.open_reservations() == 0
        assert time.monotonic() - began < 5.0
        assert counted and set(counted) == {"accounts"}
        server.restart()  # back, empty
        time.sleep(0.25)  # past the outage's pause
        assert accounts.spent("t") == pytest.approx(0.2)  # the settlement was replayed
        assert accounts.remaining("t") == pytest.approx(0.8)
    finally:
        shared.close()
        server.stop()


def test_the_budget_policy_refuses_paid_calls_and_lets_free_ones_through(tmp_path: Path) -> None:
    """``BudgetChatModel`` over accounts whose Redis is gone: the paid model is refused with
    BUDGET_UNAVAILABLE (the answer flow's extractive fallback takes over); a free model answers."""
    server = OwnRedis(tmp_path / "redis")
    shared = connect(server.url, prefix="test:", outage=Outage(pause_s=0.2))
    accounts = RedisCostAccounts(shared, 1.0)
    paid = BudgetChatModel(
        MeteredChatModel(ScriptedChatModel(["paid answer"], name="paid"), price=Price(1.0, 2.0)),
        PriceTable({"paid": Price(1.0, 2.0)}),
        accounts=accounts,
    )
    free = BudgetChatModel(
        MeteredChatModel(ScriptedChatModel(["local answer"], name="local")),
        PriceTable({}, local_models=frozenset({"local"})),
        accounts=accounts,
    )
    request = ChatRequest((ChatMessage("user", "Why?"),), max_tokens=20, tenant="t")
    try:
        with recording(CallLog()):
            assert paid.complete(request).text == "paid answer"  # Redis up: as usual
        server.stop()
        with recording(CallLog()) as log, pytest.raises(BudgetUnavailableError):
            paid.complete(request)
        assert any("refused" in d.reason for d in log.decisions)
        with recording(CallLog()):
            assert free.complete(request).text == "local answer"
    finally:
        shared.close()
        server.stop()

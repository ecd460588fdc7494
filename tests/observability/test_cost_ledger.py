"""``SqliteCostLedger``: one row per model call, totals, daily spend, no lost rows."""

from __future__ import annotations

import math
import sqlite3
import threading
from datetime import date
from pathlib import Path

import pytest

from ragkeel.errors import CostLedgerError
from ragkeel.observability.cost_ledger import SqliteCostLedger

DAY1 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
DAY2 = DAY1 + 86_400


def _fill(ledger: SqliteCostLedger) -> None:
    ledger.record(
        tenant="a",
        model="gpt-4o",
        prompt_tokens=100,
        completion_tokens=10,
        cost=0.5,
        outcome="ok",
        request_id="r1",
        rung=0,
        ts=DAY1 + 10,
    )
    ledger.record(
        tenant="a",
        model="gpt-4o-mini",
        prompt_tokens=100,
        completion_tokens=20,
        cost=0.25,
        outcome="ok",
        request_id="r2",
        rung=1,
        ts=DAY1 + 20,
    )
    ledger.record(
        tenant="b",
        model="gpt-4o",
        prompt_tokens=50,
        completion_tokens=0,
        cost=0.0,
        outcome="error",
        ts=DAY2 + 5,
    )
    ledger.record(
        tenant="b",
        model="gpt-4o",
        prompt_tokens=40,
        completion_tokens=4,
        cost=1.0,
        outcome="ok",
        ts=DAY2 + 6,
    )


def test_totals_by_model_tenant_and_day(tmp_path: Path) -> None:
    ledger = SqliteCostLedger(tmp_path / "costs.db")
    _fill(ledger)
    by_model = {t.key: t for t in ledger.totals("model")}
    assert by_model["gpt-4o"].calls == 3 and by_model["gpt-4o"].cost == pytest.approx(1.5)
    assert by_model["gpt-4o"].prompt_tokens == 190 and by_model["gpt-4o"].completion_tokens == 14
    assert [t.key for t in ledger.totals("model")] == ["gpt-4o", "gpt-4o-mini"]  # costliest first
    by_tenant = {t.key: t.cost for t in ledger.totals("tenant")}
    assert by_tenant == pytest.approx({"a": 0.75, "b": 1.0})
    days = ledger.totals("day")
    assert [t.key for t in days] == ["2026-01-02", "2026-01-01"]  # newest first
    assert [t.calls for t in days] == [2, 2]
    since = ledger.totals("tenant", since=date(2026, 1, 2))
    assert [(t.key, t.cost) for t in since] == [("b", 1.0)]
    with pytest.raises(ValueError, match="by must be"):
        ledger.totals("week")  # type: ignore[arg-type]
    ledger.close()


def test_spent_per_tenant_and_day_survives_reopening(tmp_path: Path) -> None:
    ledger = SqliteCostLedger(tmp_path / "costs.db")
    _fill(ledger)
    ledger.close()
    again = SqliteCostLedger(tmp_path / "costs.db")
    assert again.spent("a", date(2026, 1, 1)) == pytest.approx(0.75)
    assert again.spent("a", date(2026, 1, 2)) == 0.0
    assert again.spent("b", date(2026, 1, 2)) == pytest.approx(1.0)
    assert again.spent("nobody", date(2026, 1, 1)) == 0.0
    again.close()


def test_concurrent_writers_lose_no_row(tmp_path: Path) -> None:
    """Two ledgers on one file (as two server processes would be) and 8 writer threads."""
    path = tmp_path / "costs.db"
    ledgers = [SqliteCostLedger(path), SqliteCostLedger(path)]
    per_thread, threads = 50, 8
    costs = [[(t * per_thread + i + 1) * 1e-6 for i in range(per_thread)] for t in range(threads)]

    def write(t: int) -> None:
        ledger = ledgers[t % 2]
        for i, cost in enumerate(costs[t]):
            ledger.record(
                tenant=f"t{t % 3}",
                model="m",
                prompt_tokens=i,
                completion_tokens=1,
                cost=cost,
                outcome="ok",
                ts=DAY1 + i,
            )

    workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    assert all(ledger.pending == 0 for ledger in ledgers)
    (total,) = ledgers[0].totals("model")
    assert total.calls == per_thread * threads
    assert total.cost == pytest.approx(math.fsum(c for row in costs for c in row), rel=1e-12)
    for ledger in ledgers:
        ledger.close()


def test_a_row_that_cannot_be_written_waits_and_is_written_later(tmp_path: Path) -> None:
    path = tmp_path / "costs.db"
    ledger = SqliteCostLedger(path, busy_timeout_ms=50)
    blocker = sqlite3.connect(str(path), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    ledger.record(
        tenant="a",
        model="m",
        prompt_tokens=1,
        completion_tokens=1,
        cost=0.125,
        outcome="ok",
        ts=DAY1,
    )
    assert ledger.pending == 1
    assert ledger.spent("a", date(2026, 1, 1)) == 0.125  # pending rows are counted
    blocker.execute("COMMIT")
    blocker.close()
    assert ledger.flush() == 0
    assert [(t.key, t.calls, t.cost) for t in ledger.totals("tenant")] == [("a", 1, 0.125)]
    ledger.close()


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "costs.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CostLedgerError) as info:
        SqliteCostLedger(path)
    assert info.value.code == "COST_LEDGER_ERROR"


def test_totals_between_instants_for_some_tenants(tmp_path: Path) -> None:
    ledger = SqliteCostLedger(tmp_path / "costs.db")
    _fill(ledger)
    only_a = ledger.totals("model", tenants={"a"})
    assert [(t.key, t.calls, t.cost) for t in only_a] == [
        ("gpt-4o", 1, 0.5),
        ("gpt-4o-mini", 1, 0.25),
    ]
    assert ledger.totals("tenant", tenants=()) == []
    assert ledger.totals("tenant", tenants={"nobody"}) == []
    window = ledger.totals("tenant", start=DAY1 + 20, end=DAY2 + 6)
    assert [(t.key, t.calls) for t in window] == [("a", 1), ("b", 1)]  # start kept, end not
    assert [t.key for t in ledger.totals("day", start=DAY2, tenants={"a", "b"})] == ["2026-01-02"]
    ledger.close()


def test_a_v1_ledger_is_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "costs.db"
    ledger = SqliteCostLedger(path)
    _fill(ledger)
    ledger.close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX calls_by_ts")
        conn.execute("PRAGMA user_version = 1")
    again = SqliteCostLedger(path)
    assert sum(t.calls for t in again.totals("tenant")) == 4
    again.close()
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        assert "calls_by_ts" in names and conn.execute("PRAGMA user_version").fetchone()[0] == 2

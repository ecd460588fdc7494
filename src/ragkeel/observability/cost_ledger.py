"""The cost ledger: one row per model call that reached a provider, in its own WAL-mode SQLite
file (``$RAGKEEL_HOME/costs.db``), for ``ragkeel costs`` and for the daily budgets.

A row holds when (Unix seconds and the UTC day), which request, which tenant, which deployment
and fallback rung, the prompt and completion tokens, the cost in USD and the call's outcome
(``ok``, ``error``, ``interrupted``). ``totals(by=...)`` sums them per model, tenant or day,
optionally from a UTC day (``since``), within Unix-second bounds (``start`` ≤ ts < ``end``) and
for some tenants only (``tenants``: what ``GET /v1/costs`` passes for a non-admin key, issue 11);
``spent(tenant, day)`` is where a restarted server's daily budget account starts from.

Money is not dropped the way a trace may be: ``record`` writes in autocommit under a lock (one
connection per ledger; other processes wait up to ``busy_timeout_ms``). A row that still cannot
be written (the file locked for longer, a full disk) is kept in memory, retried before the next
write and on ``flush``/``close``, and counted in ``pending``; it is lost only if the process dies
first, and each failure is logged. Reading a ledger that cannot be read raises
``CostLedgerError`` (code ``COST_LEDGER_ERROR``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from ragkeel.errors import CostLedgerError
from ragkeel.observability.sqlite_file import open_wal

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # v2: an index by time (totals between two instants)
GroupBy = Literal["model", "tenant", "day"]
GROUPS: tuple[GroupBy, ...] = ("model", "tenant", "day")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id                INTEGER PRIMARY KEY,  -- the order of writing
    ts                REAL NOT NULL,        -- Unix seconds
    day               TEXT NOT NULL,        -- UTC date of ts, YYYY-MM-DD
    request_id        TEXT,
    tenant            TEXT NOT NULL,
    model             TEXT NOT NULL,        -- the deployment called
    rung              INTEGER,              -- its place in the fallback chain (0: first choice)
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost              REAL NOT NULL,        -- USD
    outcome           TEXT NOT NULL         -- ok | error | interrupted
);
CREATE INDEX IF NOT EXISTS calls_by_tenant_day ON calls (tenant, day);
CREATE INDEX IF NOT EXISTS calls_by_day ON calls (day);
CREATE INDEX IF NOT EXISTS calls_by_ts ON calls (ts);
"""
_UPGRADES = {1: "CREATE INDEX IF NOT EXISTS calls_by_ts ON calls (ts);"}
_COLUMNS = (
    "ts",
    "day",
    "request_id",
    "tenant",
    "model",
    "rung",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "outcome",
)
_INSERT = f"INSERT INTO calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class CostTotal:
    """One line of ``totals``: ``key`` is the model, the tenant or the day."""

    key: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
        }


def utc_day(ts: float) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


class SqliteCostLedger:
    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5_000) -> None:
        """Opens (creating if needed) the ledger at ``path``; raises ``CostLedgerError`` if it
        cannot (unlike traces, costs must not silently go nowhere)."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._pending: list[_Row] = []
        try:
            self._conn: sqlite3.Connection | None = open_wal(
                self.path,
                busy_timeout_ms,
                _SCHEMA,
                SCHEMA_VERSION,
                _UPGRADES,
                isolation_level="DEFERRED",
            )
        except (sqlite3.Error, OSError) as exc:
            raise CostLedgerError(
                f"cannot open the cost ledger at {self.path}: {exc}",
                hint="check that RAGKEEL_HOME is writable; move a damaged file away",
            ) from exc

    @property
    def pending(self) -> int:
        """Rows recorded but not yet written (retried on the next write, ``flush``, ``close``)."""
        return len(self._pending)

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
    ) -> None:
        """Add one call's row; never raises for a write failure (the row waits in ``pending``)."""
        at = time.time() if ts is None else ts
        row = (
            at,
            utc_day(at).isoformat(),
            request_id,
            tenant,
            model,
            rung,
            prompt_tokens,
            completion_tokens,
            cost,
            outcome,
        )
        with self._lock:
            self._pending.append(row)
            self._write_pending()

    def flush(self) -> int:
        """Try to write the pending rows now; how many are still pending."""
        with self._lock:
            self._write_pending()
            return len(self._pending)

    def totals(
        self,
        by: GroupBy = "model",
        since: date | None = None,
        *,
        start: float | None = None,
        end: float | None = None,
        tenants: Collection[str] | None = None,
    ) -> list[CostTotal]:
        """Calls, tokens and cost per ``by`` key, the largest cost first (days: newest first),
        of the calls on or after the UTC day ``since``, at or after ``start`` and before ``end``
        (Unix seconds), of ``tenants`` only (None: every tenant)."""
        if by not in GROUPS:
            raise ValueError(f"by must be one of {', '.join(GROUPS)}, got {by!r}")
        order = "day DESC" if by == "day" else "SUM(cost) DESC, key"
        clauses: list[str] = []
        params: list[Any] = []
        for clause, value in (("day >= ?", since and since.isoformat()), ("ts >= ?", start)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        if end is not None:
            clauses.append("ts < ?")
            params.append(end)
        if tenants is not None:
            names = sorted(set(tenants))
            clauses.append(f"tenant IN ({', '.join('?' * len(names))})" if names else "0")
            params += names
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = (
            f"SELECT {by} AS key, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), "
            f"SUM(cost) FROM calls {where} GROUP BY {by} ORDER BY {order}"
        )
        rows = self._read(sql, tuple(params))
        return [CostTotal(str(k), n, p, c, s) for k, n, p, c, s in rows]

    def spent(self, tenant: str, day: date) -> float:
        """USD the tenant's calls cost on the UTC ``day`` (rows still pending included)."""
        rows = self._read(
            "SELECT COALESCE(SUM(cost), 0.0) FROM calls WHERE tenant = ? AND day = ?",
            (tenant, day.isoformat()),
        )
        with self._lock:
            waiting = sum(r[8] for r in self._pending if r[3] == tenant and r[1] == str(day))
        return float(rows[0][0]) + float(waiting)

    def close(self) -> None:
        with self._lock:
            self._write_pending()
            if self._pending:
                logger.error(
                    "cost ledger %s closed with %d unwritten row(s)", self.path, len(self._pending)
                )
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _write_pending(self) -> None:
        """Write every pending row in one transaction (caller holds the lock)."""
        if not self._pending or self._conn is None:
            return
        try:
            with self._conn:  # BEGIN ... COMMIT, or ROLLBACK on error
                self._conn.executemany(_INSERT, self._pending)
        except sqlite3.Error as exc:
            logger.warning(
                "cost ledger %s: %d row(s) not written yet: %s", self.path, len(self._pending), exc
            )
            return
        self._pending.clear()

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[_Row]:
        with self._lock:
            try:
                if self._conn is None:
                    raise sqlite3.OperationalError("the cost ledger is closed")
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise CostLedgerError(
                    f"cannot read the cost ledger at {self.path}: {exc}",
                    hint="move a damaged file away and a new one is created",
                ) from exc

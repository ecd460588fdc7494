"""Where traces live: the ``TraceStore`` protocol, ``SqliteTraceStore`` (the default: its own
WAL-mode SQLite file, ``$RAGKEEL_HOME/traces.db``) and ``NullTraceStore`` (tracing disabled).

Recording a trace never fails or stalls the request it describes: ``record`` is one prepared
INSERT in autocommit (WAL, ``synchronous=NORMAL``: no fsync per write), waits at most
``busy_timeout_ms`` for another writer, and turns any failure (a corrupt or unwritable file, a
full disk, a closed store) into a logged warning and one more ``dropped``; it returns the id
either way. Reading is different: ``get``/``recent``/``search`` on a store that cannot be read raise
``TraceStoreError``, since there the user asked for the traces.

Reading is scoped by tenant (issue 11): ``search(TraceFilter(tenants=...))`` and
``get(id, tenants=...)`` see only the traces of the given tenants (``None``: every tenant, the
operator's and an ``admin`` key's view). A trace whose tenant is unknown (written before
traces had tenants) is seen only by ``tenants=None``. A trace of another tenant is exactly as
absent as a missing one: ``get`` returns ``None``, and an id prefix counts only the caller's
own traces when deciding whether it is ambiguous, so nothing can be learnt by probing ids.

``search`` returns light ``TraceSummary`` rows (what a list of traces shows: no retrieved
chunks, prompt or citations), newest first (in the order of writing), filtered by outcome,
route, model, creation time (``since`` ≤ ``created_at`` < ``until``, Unix seconds) and a
substring of the question or the output (``LIKE``: case-insensitive for ASCII letters only).
Paging: ``before`` is the id of the last row of the previous page (the rows written before
it; an id the caller cannot see — missing, or another tenant's — gives an empty page, as a
trace the retention deleted does: every older one is gone too). ``TraceFilter`` checks its
own values and raises ``TraceFilterError`` (``TRACE_FILTER_INVALID``) for a bad one.

Retention (issue 12; ``Retention``, from ``observability.retention_days``/``max_db_mb``): a
store given one runs ``sweep`` on a background thread (started by the first ``record``; every
``interval_s`` from then on while it is open): traces older than ``max_age_s`` are deleted, then, while the
live data (the file's pages in use) is over ``max_bytes``, the oldest traces until it is under
90 % of it; freed pages go back to the file system (``PRAGMA incremental_vacuum``: new files
are made with ``auto_vacuum = INCREMENTAL``; a file made before keeps its size and reuses the
freed pages). The feedback rating a deleted trace goes with it (``feedback.py``'s table in the
same file). Every step is a small transaction on the store's connection (``batch`` rows,
``vacuum_pages`` pages) with a pause after it, so a request writing its trace meanwhile waits
for about one step (``bench/trace_size.py`` measures it) — never for the whole sweep.

Errors::

    RagkeelError
    ├── TraceNotFoundError   TRACE_NOT_FOUND      no trace has this id
    ├── TraceIdAmbiguousError TRACE_ID_AMBIGUOUS  an id prefix matches more than one trace
    └── TraceStoreError      TRACE_STORE_ERROR    the trace store cannot be opened or read
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ragkeel.errors import TraceFilterError, TraceIdAmbiguousError, TraceStoreError
from ragkeel.observability.sqlite_file import open_wal
from ragkeel.observability.trace import (
    OUTCOMES,
    Outcome,
    PromptRecord,
    RetrievedChunk,
    Trace,
)
from ragkeel.types import Citation, GateDecision

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # v2: tenant, gateway; v3: indexes for search by tenant and time
ID_LENGTH = 32
MIN_PREFIX = 8
MAX_SEARCH_LIMIT = 1000  # rows per page of ``search``
MAX_TEXT_FILTER = 200  # characters of ``TraceFilter.text``
WAL_LIMIT = 8 * 2**20  # bytes the WAL file is cut back to after a checkpoint
_HEX = frozenset("0123456789abcdef")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS traces (
    id               TEXT PRIMARY KEY,  -- trace.new_trace_id; rowid: the order of writing
    created_at       REAL NOT NULL,     -- Unix seconds
    route            TEXT NOT NULL,
    question         TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    error_code       TEXT,
    error_message    TEXT,
    mode             TEXT,
    model            TEXT,
    template_version TEXT,
    grounded         INTEGER,
    input_tokens     INTEGER NOT NULL,
    output_tokens    INTEGER NOT NULL,
    cost             REAL NOT NULL,
    total_ms         REAL,
    latency_ms       TEXT NOT NULL,     -- JSON {stage: ms}
    retrieved        TEXT NOT NULL,     -- JSON [RetrievedChunk]
    gate             TEXT,              -- JSON GateDecision
    prompt_sha256    TEXT,
    prompt_chars     INTEGER,
    prompt_tokens    INTEGER,
    prompt_text      TEXT,              -- NULL when keep_prompt_text is off
    output           TEXT NOT NULL,
    citations        TEXT NOT NULL,     -- JSON [Citation]
    degraded_reason  TEXT,
    degraded_detail  TEXT,
    tenant           TEXT,
    gateway          TEXT               -- JSON CallLog.to_dict(): attempts, decisions, rung
);
CREATE INDEX IF NOT EXISTS traces_by_outcome ON traces (outcome);  -- (outcome, rowid)
CREATE INDEX IF NOT EXISTS traces_by_tenant ON traces (tenant);  -- (tenant, rowid)
CREATE INDEX IF NOT EXISTS traces_by_created ON traces (created_at);
"""
_COLUMNS = (
    "id",
    "created_at",
    "route",
    "question",
    "outcome",
    "error_code",
    "error_message",
    "mode",
    "model",
    "template_version",
    "grounded",
    "input_tokens",
    "output_tokens",
    "cost",
    "total_ms",
    "latency_ms",
    "retrieved",
    "gate",
    "prompt_sha256",
    "prompt_chars",
    "prompt_tokens",
    "prompt_text",
    "output",
    "citations",
    "degraded_reason",
    "degraded_detail",
    "tenant",
    "gateway",
)
_UPGRADES = {  # from version -> statements bringing it to version + 1
    1: "ALTER TABLE traces ADD COLUMN tenant TEXT; ALTER TABLE traces ADD COLUMN gateway TEXT;",
    2: "CREATE INDEX IF NOT EXISTS traces_by_tenant ON traces (tenant);"
    "CREATE INDEX IF NOT EXISTS traces_by_created ON traces (created_at);",
}
_INSERT = f"INSERT INTO traces ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM traces"
_SUMMARY_COLUMNS = (
    "id",
    "created_at",
    "route",
    "outcome",
    "tenant",
    "model",
    "mode",
    "grounded",
    "total_ms",
    "cost",
    "input_tokens",
    "output_tokens",
    "error_code",
    "degraded_reason",
    "question",
)
_SELECT_SUMMARY = f"SELECT {', '.join(_SUMMARY_COLUMNS)} FROM traces"


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceFilter:
    """Which traces ``search`` returns. ``tenants`` has no default on purpose: every caller
    says whose traces it may see (``None``: every tenant — the CLI, an ``admin`` key).
    Checked on construction (``TraceFilterError``)."""

    tenants: frozenset[str] | None
    outcome: Outcome | None = None
    route: str | None = None
    model: str | None = None
    since: float | None = None  # Unix seconds, inclusive
    until: float | None = None  # Unix seconds, exclusive
    text: str | None = None  # a substring of the question or the output
    limit: int = 50
    before: str | None = None  # paging: the id of the last trace of the previous page

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise TraceFilterError(
                f"outcome must be one of {', '.join(OUTCOMES)}, got {self.outcome!r}"
            )
        if not 1 <= self.limit <= MAX_SEARCH_LIMIT:
            raise TraceFilterError(
                f"limit must be between 1 and {MAX_SEARCH_LIMIT}, got {self.limit}"
            )
        if self.since is not None and self.until is not None and self.since > self.until:
            raise TraceFilterError(
                f"since ({self.since}) is after until ({self.until})",
                hint="since and until are Unix seconds; since <= until",
            )
        if self.text is not None and len(self.text) > MAX_TEXT_FILTER:
            raise TraceFilterError(
                f"text has {len(self.text)} characters; at most {MAX_TEXT_FILTER} are allowed"
            )
        before = self.before
        if before is not None and not (0 < len(before) <= ID_LENGTH and set(before) <= _HEX):
            raise TraceFilterError(
                "before must be a trace id (lowercase hex digits), the last of the previous page"
            )


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """One row of a trace list: what a request was and how it went, without its payloads."""

    id: str
    created_at: float
    route: str
    outcome: Outcome
    tenant: str | None
    model: str | None
    mode: str | None
    grounded: bool | None
    total_ms: float | None
    cost: float
    input_tokens: int
    output_tokens: int
    error_code: str | None
    degraded_reason: str | None
    question: str

    @property
    def created_iso(self) -> str:
        when = datetime.fromtimestamp(self.created_at, UTC)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_iso,
            "route": self.route,
            "outcome": self.outcome,
            "tenant": self.tenant,
            "model": self.model,
            "mode": self.mode,
            "grounded": self.grounded,
            "total_ms": self.total_ms,
            "cost": self.cost,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "error_code": self.error_code,
            "degraded_reason": self.degraded_reason,
            "question": self.question,
        }


@dataclass(frozen=True, slots=True)
class Retention:
    """How much the trace store keeps: traces younger than ``max_age_s`` (None: any age), in at
    most ``max_bytes`` of live data (None: any size), enforced every ``interval_s``."""

    max_age_s: float | None = 30 * 86_400.0
    max_bytes: int | None = 512 * 2**20
    interval_s: float = 60.0
    batch: int = 100  # rows per delete: what a concurrent write may wait for
    vacuum_pages: int = 256  # pages given back per step (1 MiB of 4 KiB pages)
    pause_s: float = 0.002  # between two steps: writers waiting for the lock get it


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one ``sweep`` did: traces deleted by age and by size, live bytes before and after,
    the size on disk after of the file and of its WAL (kept at most ``WAL_LIMIT`` once
    checkpointed), and how long it took."""

    deleted_by_age: int
    deleted_by_size: int
    live_bytes_before: int
    live_bytes_after: int
    file_bytes: int
    wal_bytes: int
    ms: float


class TraceStore(Protocol):
    @property
    def dropped(self) -> int:
        """Traces that could not be written since this store was opened."""
        ...

    def record(self, trace: Trace) -> str | None:
        """Write ``trace``; never raises. The trace id, or ``None`` when tracing is off."""
        ...

    def get(self, trace_id: str, *, tenants: Collection[str] | None = None) -> Trace | None:
        """The trace with this id, or with this unique prefix of it (``MIN_PREFIX`` or more
        characters, as ``ragkeel traces`` shows them), among the traces of ``tenants`` (None:
        every tenant); ``None`` if there is none."""
        ...

    def search(self, where: TraceFilter) -> list[TraceSummary]:
        """The traces ``where`` selects, newest first, at most ``where.limit``."""
        ...

    def recent(self, limit: int = 20, outcome: Outcome | None = None) -> list[Trace]:
        """The last ``limit`` traces written (optionally of one outcome), newest first."""
        ...

    def close(self) -> None: ...


class NullTraceStore:
    """Tracing disabled: records nothing, finds nothing."""

    dropped = 0

    def record(self, trace: Trace) -> None:
        return None

    def get(self, trace_id: str, *, tenants: Collection[str] | None = None) -> Trace | None:
        return None

    def search(self, where: TraceFilter) -> list[TraceSummary]:
        return []

    def recent(self, limit: int = 20, outcome: Outcome | None = None) -> list[Trace]:
        return []

    def close(self) -> None:
        return None


class SqliteTraceStore:
    def __init__(
        self,
        path: Path | str,
        *,
        keep_prompt_text: bool = True,
        busy_timeout_ms: int = 500,
        retention: Retention | None = None,
    ) -> None:
        """Opens (creating if needed) the file at ``path``. A file that cannot be opened does
        not raise here: writes are then dropped, and reads raise ``TraceStoreError``.
        ``retention``: enforced in the background once traces are written (None: keep all)."""
        self.path = Path(path)
        self.keep_prompt_text = keep_prompt_text
        self.retention = retention
        self._lock = threading.Lock()
        self._dropped = 0
        self._conn: sqlite3.Connection | None = None
        self._error: str | None = None
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None
        try:
            self._conn = open_wal(
                self.path,
                busy_timeout_ms,
                _SCHEMA,
                SCHEMA_VERSION,
                _UPGRADES,
                incremental_vacuum=True,
            )
            self._conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
        except (sqlite3.Error, OSError) as exc:
            self._error = f"cannot open the trace store at {self.path}: {exc}"
            logger.warning("%s; traces will be dropped", self._error)

    @property
    def dropped(self) -> int:
        return self._dropped

    def record(self, trace: Trace) -> str:
        if not self.keep_prompt_text:
            trace = trace.without_prompt_text()
        try:
            row = _row(trace)
            with self._lock:
                if self._conn is None:
                    raise sqlite3.OperationalError(self._error or "the trace store is closed")
                self._conn.execute(_INSERT, row)
            if self._sweeper is None and self.retention is not None:
                self._start_sweeper()
        except Exception as exc:  # by contract: a trace write never fails the request
            with self._lock:
                self._dropped += 1
                dropped = self._dropped
            logger.warning(
                "trace %s not recorded (%d dropped so far): %s: %s",
                trace.id,
                dropped,
                type(exc).__name__,
                exc,
            )
        return trace.id

    def get(self, trace_id: str, *, tenants: Collection[str] | None = None) -> Trace | None:
        key = trace_id.strip().lower()
        scope, scope_params = _tenant_clause(tenants)
        if MIN_PREFIX <= len(key) < ID_LENGTH:  # ids are lowercase hex: "~" sorts after them
            sql = f"{_SELECT} WHERE id >= ? AND id < ? AND {scope} ORDER BY id LIMIT 2"
            rows = self._read(sql, (key, key + "~", *scope_params))
            if len(rows) > 1:
                raise TraceIdAmbiguousError(
                    f"more than one trace id starts with {key!r}", hint="give more of the id"
                )
        else:
            rows = self._read(f"{_SELECT} WHERE id = ? AND {scope}", (key, *scope_params))
        return _trace(rows[0]) if rows else None

    def search(self, where: TraceFilter) -> list[TraceSummary]:
        clauses, params = _where(where)
        sql = f"{_SELECT_SUMMARY} WHERE {' AND '.join(clauses)} ORDER BY rowid DESC LIMIT ?"
        return [_summary(r) for r in self._read(sql, (*params, where.limit))]

    def recent(self, limit: int = 20, outcome: Outcome | None = None) -> list[Trace]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if outcome is None:
            rows = self._read(f"{_SELECT} ORDER BY rowid DESC LIMIT ?", (limit,))
        elif outcome in OUTCOMES:
            sql = f"{_SELECT} WHERE outcome = ? ORDER BY rowid DESC LIMIT ?"
            rows = self._read(sql, (outcome, limit))
        else:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        return [_trace(r) for r in rows]

    def close(self) -> None:
        self._stop.set()
        sweeper = self._sweeper
        if sweeper is not None and sweeper is not threading.current_thread():
            sweeper.join(timeout=30)  # it stops between two steps
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._error = "the trace store is closed"

    # -- retention --------------------------------------------------------------------------
    def sweep(self, now: float | None = None) -> SweepReport:
        """Enforce ``retention`` once (see the module's docstring); never raises for a store
        that cannot be written (logged; the next sweep tries again)."""
        r = self.retention or Retention(max_age_s=None, max_bytes=None)
        started = time.perf_counter()
        before = after = self._live_bytes()
        by_age = by_size = 0
        try:
            if r.max_age_s is not None:
                cutoff = (time.time() if now is None else now) - r.max_age_s
                by_age = self._delete_oldest("created_at < ?", (cutoff,), None, r.batch, r.pause_s)
            after = self._live_bytes()
            if r.max_bytes is not None and after > r.max_bytes:
                target = 0.9 * r.max_bytes
                for _ in range(100):  # bounded: each round deletes at least one batch's worth
                    rows = self._count()
                    if after <= target or rows == 0 or self._stop.is_set():
                        break
                    excess = math.ceil(rows * (after - target) / after)
                    by_size += self._delete_oldest("1", (), max(excess, 1), r.batch, r.pause_s)
                    after = self._live_bytes()
            self._give_back(r.vacuum_pages, r.pause_s)
            after = self._live_bytes()
        except sqlite3.Error as exc:
            logger.warning("trace retention on %s stopped: %s", self.path, exc)
        return SweepReport(
            by_age,
            by_size,
            before,
            after,
            _size(self.path),
            _size(self.path.with_name(self.path.name + "-wal")),
            (time.perf_counter() - started) * 1000,
        )

    def _start_sweeper(self) -> None:
        with self._lock:
            if self._sweeper is not None or self._stop.is_set():
                return
            self._sweeper = threading.Thread(
                target=self._sweep_loop, name="ragkeel-trace-retention", daemon=True
            )
        self._sweeper.start()

    def _sweep_loop(self) -> None:
        interval = self.retention.interval_s if self.retention else 60.0
        while not self._stop.wait(interval):  # the first sweep one interval after start
            try:
                report = self.sweep()
                if report.deleted_by_age or report.deleted_by_size:
                    logger.info(
                        "trace retention: %d trace(s) past their age and %d past the size cap "
                        "deleted; %d bytes live, the file is %d bytes (WAL %d) (%.0f ms)",
                        report.deleted_by_age,
                        report.deleted_by_size,
                        report.live_bytes_after,
                        report.file_bytes,
                        report.wal_bytes,
                        report.ms,
                    )
            except Exception:  # the sweeper must outlive a bad sweep
                logger.warning("trace retention failed on %s", self.path, exc_info=True)

    def _delete_oldest(
        self, where: str, params: tuple[Any, ...], limit: int | None, batch: int, pause: float
    ) -> int:
        """Delete the oldest traces matching ``where`` (at most ``limit``), ``batch`` per
        transaction, with the feedback that rates them (``feedback.py`` keeps its table in this
        file: a rating outlives neither its trace nor the retention); how many traces."""
        oldest = f"SELECT rowid FROM traces WHERE {where} ORDER BY rowid LIMIT ?"
        ratings = (
            "DELETE FROM feedback WHERE trace_id IN "
            f"(SELECT id FROM traces WHERE rowid IN ({oldest}))"
        )
        sql = f"DELETE FROM traces WHERE rowid IN ({oldest})"
        deleted = 0
        while not self._stop.is_set() and (limit is None or deleted < limit):
            step = batch if limit is None else min(batch, limit - deleted)
            with self._lock:
                if self._conn is None:
                    break
                conn = self._conn
                rated = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback'"
                ).fetchone()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if rated:
                        conn.execute(ratings, (*params, step))
                    n = conn.execute(sql, (*params, step)).rowcount
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            deleted += n
            if n < step:
                break
            self._stop.wait(pause)  # the lock is not fair: let a waiting writer in
        return deleted

    def _give_back(self, pages: int, pause: float) -> None:
        """Return free pages to the file system, ``pages`` at a time."""
        for step in range(1_000_000):  # bounded; each step frees up to ``pages``
            if step:
                self._stop.wait(pause)
            with self._lock:
                if self._conn is None or self._stop.is_set():
                    return
                if self._conn.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
                    return  # a file made without it: its free pages are reused instead
                if self._conn.execute("PRAGMA freelist_count").fetchone()[0] == 0:
                    break
                self._conn.execute(f"PRAGMA incremental_vacuum({int(pages)})").fetchall()
        with self._lock:
            if self._conn is not None:  # move the WAL into the file, which then shrinks
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _live_bytes(self) -> int:
        with self._lock:
            if self._conn is None:
                return 0
            pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
            free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
            size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def _count(self) -> int:
        with self._lock:
            if self._conn is None:
                return 0
            return int(self._conn.execute("SELECT count(*) FROM traces").fetchone()[0])

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                if self._conn is None:
                    raise sqlite3.OperationalError(self._error or "the trace store is closed")
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise TraceStoreError(
                    f"cannot read traces from {self.path}: {exc}",
                    hint="check observability.trace_store; move a damaged file away "
                    "and a new one is created",
                ) from exc


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _tenant_clause(tenants: Collection[str] | None) -> tuple[str, tuple[str, ...]]:
    """SQL limiting rows to ``tenants`` (None: every row, unknown tenants included)."""
    if tenants is None:
        return "1", ()
    names = tuple(sorted(set(tenants)))
    if not names:
        return "0", ()
    return f"tenant IN ({', '.join('?' * len(names))})", names


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(f: TraceFilter) -> tuple[list[str], list[Any]]:
    scope, scope_params = _tenant_clause(f.tenants)
    clauses: list[str] = [scope]
    params: list[Any] = list(scope_params)
    for column, value in (("outcome", f.outcome), ("route", f.route), ("model", f.model)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if f.since is not None:
        clauses.append("created_at >= ?")
        params.append(f.since)
    if f.until is not None:
        clauses.append("created_at < ?")
        params.append(f.until)
    if f.text:
        clauses.append("(question LIKE ? ESCAPE '\\' OR output LIKE ? ESCAPE '\\')")
        params += [_like(f.text)] * 2
    if f.before is not None:  # looked up within the same tenants: no probing other tenants' ids
        clauses.append(f"rowid < COALESCE((SELECT rowid FROM traces WHERE id = ? AND {scope}), 0)")
        params += [f.before, *scope_params]
    return clauses, params


def _summary(row: tuple[Any, ...]) -> TraceSummary:
    r = dict(zip(_SUMMARY_COLUMNS, row, strict=True))
    r["grounded"] = None if r["grounded"] is None else bool(r["grounded"])
    return TraceSummary(**r)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _row(t: Trace) -> tuple[Any, ...]:
    p = t.prompt
    return (
        t.id,
        t.created_at,
        t.route,
        t.question,
        t.outcome,
        t.error_code,
        t.error_message,
        t.mode,
        t.model,
        t.template_version,
        None if t.grounded is None else int(t.grounded),
        t.input_tokens,
        t.output_tokens,
        t.cost,
        t.total_ms,
        _json(dict(t.latency_ms)),
        _json([_fields(c) for c in t.retrieved]),
        None if t.gate is None else _json(_fields(t.gate)),
        p.sha256 if p else None,
        p.chars if p else None,
        p.tokens if p else None,
        p.text if p else None,
        t.output,
        _json([_fields(c) for c in t.citations]),
        t.degraded_reason,
        t.degraded_detail,
        t.tenant,
        None if t.gateway is None else _json(dict(t.gateway)),
    )


def _fields(record: RetrievedChunk | GateDecision | Citation) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def _trace(row: tuple[Any, ...]) -> Trace:
    r = dict(zip(_COLUMNS, row, strict=True))
    gate = json.loads(r["gate"]) if r["gate"] is not None else None
    prompt = (
        PromptRecord(r["prompt_sha256"], r["prompt_chars"], r["prompt_tokens"], r["prompt_text"])
        if r["prompt_sha256"] is not None
        else None
    )
    return Trace(
        id=r["id"],
        created_at=r["created_at"],
        route=r["route"],
        question=r["question"],
        outcome=r["outcome"],
        error_code=r["error_code"],
        error_message=r["error_message"],
        mode=r["mode"],
        model=r["model"],
        template_version=r["template_version"],
        grounded=None if r["grounded"] is None else bool(r["grounded"]),
        input_tokens=r["input_tokens"],
        output_tokens=r["output_tokens"],
        cost=r["cost"],
        latency_ms=json.loads(r["latency_ms"]),
        retrieved=tuple(RetrievedChunk(**c) for c in json.loads(r["retrieved"])),
        gate=GateDecision(**gate) if gate is not None else None,
        prompt=prompt,
        output=r["output"],
        citations=tuple(Citation(**c) for c in json.loads(r["citations"])),
        degraded_reason=r["degraded_reason"],
        degraded_detail=r["degraded_detail"],
        tenant=r["tenant"],
        gateway=json.loads(r["gateway"]) if r["gateway"] is not None else None,
    )


def open_trace_file(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection to the trace file at ``path`` with the traces' schema brought up to date,
    for a table kept beside the traces in the same file (``feedback.py``)."""
    return open_wal(path, busy_timeout_ms, _SCHEMA, SCHEMA_VERSION, _UPGRADES)

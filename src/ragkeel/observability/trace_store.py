"""Where traces live: the ``TraceStore`` protocol, ``SqliteTraceStore`` (the default: its own
WAL-mode SQLite file, ``$RAGKEEL_HOME/traces.db``) and ``NullTraceStore`` (tracing disabled).

Recording a trace never fails or stalls the request it describes: ``record`` is one prepared
INSERT in autocommit (WAL, ``synchronous=NORMAL``: no fsync per write), waits at most
``busy_timeout_ms`` for another writer, and turns any failure (a corrupt or unwritable file, a
full disk, a closed store) into a logged warning and one more ``dropped``; it returns the id
either way. Reading is different: ``get``/``recent`` on a store that cannot be read raise
``TraceStoreError``, since there the user asked for the traces.

Errors::

    RagkeelError
    ├── TraceNotFoundError   TRACE_NOT_FOUND      no trace has this id
    ├── TraceIdAmbiguousError TRACE_ID_AMBIGUOUS  an id prefix matches more than one trace
    └── TraceStoreError      TRACE_STORE_ERROR    the trace store cannot be opened or read
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol

from ragkeel.errors import TraceIdAmbiguousError, TraceStoreError
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

SCHEMA_VERSION = 2  # v2: tenant, gateway
ID_LENGTH = 32
MIN_PREFIX = 8
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
}
_INSERT = f"INSERT INTO traces ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM traces"


class TraceStore(Protocol):
    @property
    def dropped(self) -> int:
        """Traces that could not be written since this store was opened."""
        ...

    def record(self, trace: Trace) -> str | None:
        """Write ``trace``; never raises. The trace id, or ``None`` when tracing is off."""
        ...

    def get(self, trace_id: str) -> Trace | None:
        """The trace with this id, or with this unique prefix of it (``MIN_PREFIX`` or more
        characters, as ``ragkeel traces`` shows them); ``None`` if there is none."""
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

    def get(self, trace_id: str) -> Trace | None:
        return None

    def recent(self, limit: int = 20, outcome: Outcome | None = None) -> list[Trace]:
        return []

    def close(self) -> None:
        return None


class SqliteTraceStore:
    def __init__(
        self, path: Path | str, *, keep_prompt_text: bool = True, busy_timeout_ms: int = 500
    ) -> None:
        """Opens (creating if needed) the file at ``path``. A file that cannot be opened does
        not raise here: writes are then dropped, and reads raise ``TraceStoreError``."""
        self.path = Path(path)
        self.keep_prompt_text = keep_prompt_text
        self._lock = threading.Lock()
        self._dropped = 0
        self._conn: sqlite3.Connection | None = None
        self._error: str | None = None
        try:
            self._conn = open_wal(self.path, busy_timeout_ms, _SCHEMA, SCHEMA_VERSION, _UPGRADES)
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

    def get(self, trace_id: str) -> Trace | None:
        key = trace_id.strip().lower()
        if MIN_PREFIX <= len(key) < ID_LENGTH:  # ids are lowercase hex: "~" sorts after them
            sql = f"{_SELECT} WHERE id >= ? AND id < ? ORDER BY id LIMIT 2"
            rows = self._read(sql, (key, key + "~"))
            if len(rows) > 1:
                raise TraceIdAmbiguousError(
                    f"more than one trace id starts with {key!r}", hint="give more of the id"
                )
        else:
            rows = self._read(f"{_SELECT} WHERE id = ?", (key,))
        return _trace(rows[0]) if rows else None

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
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._error = "the trace store is closed"

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

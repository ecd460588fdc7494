"""Feedback on answers (issue 12): what a user thought of a traced request, kept beside the
traces in the same file (a ``feedback`` table in ``traces.db``, opened through
``trace_store.open_trace_file`` so the traces' schema is brought up to date first).

A rating is ``up``, ``down`` or a score from 1 to 5 (``parse_rating``; anything else is
``FeedbackInvalidError``, code ``FEEDBACK_INVALID``), with an optional comment of at most
``MAX_COMMENT_CHARS`` characters (stripped; an empty one is no comment). ``down``, 1 and 2 are
*negative*: ``ragkeel eval add-case --from-feedback`` turns the traces they rate into regression
cases (``evaluation/datasets/trace_cases.py``).

Each rating is one row: rating a trace again adds a row (the newest is the trace's current
rating, ``latest``). The row keeps the tenant of the trace it rates, so reads filter by it like
the traces themselves. Whether the caller may rate that trace is the edge's decision
(``api/routes/feedback.py``: another tenant's trace is "not found").

Unlike a trace, feedback is what the user asked to store: a write that fails raises
``TraceStoreError`` (the file is the trace store's), it is not dropped.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragkeel.errors import FeedbackInvalidError, TraceStoreError
from ragkeel.observability.trace_store import open_trace_file

MAX_COMMENT_CHARS = 2000
THUMBS = ("up", "down")
RATINGS = frozenset({*THUMBS, "1", "2", "3", "4", "5"})
NEGATIVE = frozenset({"down", "1", "2"})
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id         INTEGER PRIMARY KEY,  -- the order of writing
    trace_id   TEXT NOT NULL,
    created_at REAL NOT NULL,        -- Unix seconds
    tenant     TEXT NOT NULL,        -- the rated trace's tenant
    rating     TEXT NOT NULL,        -- up | down | 1..5
    negative   INTEGER NOT NULL,     -- down, 1 or 2
    comment    TEXT
);
CREATE INDEX IF NOT EXISTS feedback_by_trace ON feedback (trace_id);
CREATE INDEX IF NOT EXISTS feedback_by_negative ON feedback (negative, created_at);
"""
_COLUMNS = "id, trace_id, created_at, tenant, rating, comment"


def parse_rating(value: object) -> str:
    """``"up"``, ``"down"`` or ``"1"``..``"5"`` from what a client sent (a string or an int)."""
    if isinstance(value, bool):  # True is an int to Python, not a rating
        value = None
    if isinstance(value, int) and 1 <= value <= 5:
        return str(value)
    if isinstance(value, str) and value.strip().lower() in RATINGS:
        return value.strip().lower()
    raise FeedbackInvalidError(
        f"rating must be 'up', 'down' or a whole number from 1 to 5, got {value!r}",
        hint='send {"trace_id": ..., "rating": "up"} or "rating": 4',
    )


def check_comment(comment: str | None) -> str | None:
    """The comment stripped (None when empty); longer than ``MAX_COMMENT_CHARS``: refused."""
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT_CHARS:
        raise FeedbackInvalidError(
            f"the comment has {len(text)} characters; at most {MAX_COMMENT_CHARS} are allowed",
            hint="shorten the comment",
        )
    return text or None


@dataclass(frozen=True, slots=True)
class Feedback:
    """One rating of one trace (``rating`` as ``parse_rating`` returns it)."""

    trace_id: str
    rating: str
    tenant: str
    comment: str | None = None
    created_at: float = field(default_factory=time.time)
    id: int | None = None  # set once stored

    @property
    def negative(self) -> bool:
        return self.rating in NEGATIVE

    def to_dict(self) -> dict[str, Any]:
        rating: str | int = int(self.rating) if self.rating.isdigit() else self.rating
        return {
            "id": self.id,
            "trace_id": self.trace_id,
            "rating": rating,
            "negative": self.negative,
            "comment": self.comment,
            "created_at": self.created_at,
        }


class SqliteFeedbackStore:
    """The ``feedback`` table of the trace file at ``path`` (opened on first use)."""

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 500) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def add(self, feedback: Feedback) -> Feedback:
        """Store ``feedback``; the stored row (with its ``id``)."""
        sql = (
            "INSERT INTO feedback (trace_id, created_at, tenant, rating, negative, comment) "
            "VALUES (?, ?, ?, ?, ?, ?)"
        )
        f = feedback
        params = (f.trace_id, f.created_at, f.tenant, f.rating, int(f.negative), f.comment)
        with self._lock:
            try:
                row_id = self._connection().execute(sql, params).lastrowid
            except (sqlite3.Error, OSError) as exc:
                raise self._error("write feedback to", exc) from exc
        return Feedback(f.trace_id, f.rating, f.tenant, f.comment, f.created_at, row_id)

    def for_trace(self, trace_id: str) -> list[Feedback]:
        """Every rating of the trace, oldest first."""
        sql = f"SELECT {_COLUMNS} FROM feedback WHERE trace_id = ? ORDER BY id"
        return [_feedback(r) for r in self._read(sql, (trace_id,))]

    def latest(self, trace_ids: Collection[str]) -> dict[str, Feedback]:
        """The newest rating of each of ``trace_ids`` that has one."""
        ids = list(dict.fromkeys(trace_ids))
        out: dict[str, Feedback] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            sql = (
                f"SELECT {_COLUMNS} FROM feedback WHERE id IN (SELECT MAX(id) FROM feedback "
                f"WHERE trace_id IN ({','.join('?' * len(part))}) GROUP BY trace_id)"
            )
            out.update((f.trace_id, f) for f in map(_feedback, self._read(sql, tuple(part))))
        return out

    def negative(self, *, since: float | None = None, limit: int = 1000) -> list[Feedback]:
        """The traces whose newest rating is negative (that rating), newest first; ``since``:
        rated at or after this Unix time."""
        sql = (
            f"SELECT {_COLUMNS} FROM feedback WHERE id IN (SELECT MAX(id) FROM feedback "
            "GROUP BY trace_id) AND negative = 1 AND created_at >= ? ORDER BY id DESC LIMIT ?"
        )
        return [_feedback(r) for r in self._read(sql, (since or 0.0, limit))]

    def counts(self, *, tenant: str | None = None) -> dict[str, int]:
        """How many ratings of each value were given (of ``tenant``'s traces; None: all)."""
        where, params = ("WHERE tenant = ?", (tenant,)) if tenant is not None else ("", ())
        sql = f"SELECT rating, COUNT(*) FROM feedback {where} GROUP BY rating"
        return {str(r): int(n) for r, n in self._read(sql, params)}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = open_trace_file(self.path, self.busy_timeout_ms)
            try:
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchall()
            except (sqlite3.Error, OSError) as exc:
                raise self._error("read feedback from", exc) from exc

    def _error(self, action: str, exc: BaseException) -> TraceStoreError:
        return TraceStoreError(
            f"cannot {action} {self.path}: {exc}",
            hint="check observability.trace_store; the feedback table lives in the trace file",
        )


def _feedback(row: tuple[Any, ...]) -> Feedback:
    row_id, trace_id, created_at, tenant, rating, comment = row
    return Feedback(trace_id, rating, tenant, comment, created_at, row_id)

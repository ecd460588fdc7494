"""``TraceWindows``: what the monitor reads of the trace store, one time window at a time.

Its own read-only connection to the trace store's SQLite file (``mode=ro``: it can never
write, and in WAL mode a reader neither blocks nor waits for the request path's writer). One
query per window over ``created_at`` (indexed in the store's schema) fetches only the columns
the rules use: outcome, total latency, cost, grounded, and the top retrieval score.

The top retrieval score is the best dense (cosine) similarity the answer gate saw
(``gate.top_dense``; the best keyword score where no dense search ran, ``retrieval.mode:
bm25``), read out of the JSON in SQL. Not the fused score of the first hit: weighted fusion
min-max normalises each query's lists, so its top is near 1 whatever the query, and says
nothing about how well the corpus covers it; the gate's similarity does. Evaluation runs
(``eval.run``) are not service traffic and are left out. A window holds at most
``max_samples`` traces, the newest. A trace store that does not exist yet is an empty window.

Errors: a file that exists but cannot be read raises ``TraceStoreError`` (``TRACE_STORE_ERROR``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ragkeel.errors import TraceStoreError
from ragkeel.observability import names

_QUERY = """
SELECT outcome, total_ms, cost, grounded,
       COALESCE(json_extract(gate, '$.top_dense'), json_extract(gate, '$.top_keyword'))
FROM traces
WHERE created_at >= ? AND created_at < ? AND route != ?
ORDER BY created_at DESC
LIMIT ?
"""


@dataclass(frozen=True, slots=True)
class Window:
    """The facts of the traces written in ``[start, end)`` (Unix seconds)."""

    start: float
    end: float
    outcomes: Counter[str] = field(default_factory=Counter)
    total_ms: tuple[float, ...] = ()  # requests that recorded a total latency
    cost: float = 0.0  # USD, every request's
    top_scores: tuple[float, ...] = ()  # requests that retrieved anything
    grounded: int = 0  # answers whose grounding was checked and held...
    checked: int = 0  # ...of the answers whose grounding was checked

    @property
    def requests(self) -> int:
        return sum(self.outcomes.values())

    def share(self, outcome: str) -> float:
        return self.outcomes[outcome] / self.requests if self.requests else 0.0

    @property
    def cost_per_answer(self) -> float | None:
        """USD per answered request (a degraded answer is an answer too)."""
        answered = self.outcomes["answered"] + self.outcomes["degraded"]
        return self.cost / answered if answered else None

    def span(self) -> dict[str, float]:
        return {"start": self.start, "end": self.end, "seconds": self.end - self.start}


class TraceWindows:
    def __init__(self, path: Path, *, max_samples: int = 50_000) -> None:
        self.path = path
        self.max_samples = max_samples
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def read(self, start: float, end: float) -> Window:
        rows = self._rows(start, end)
        outcomes: Counter[str] = Counter()
        total_ms: list[float] = []
        scores: list[float] = []
        cost = 0.0
        grounded = checked = 0
        for outcome, total, row_cost, row_grounded, top in rows:
            outcomes[outcome] += 1
            cost += row_cost or 0.0
            if total is not None:
                total_ms.append(float(total))
            if top is not None:
                scores.append(float(top))
            if row_grounded is not None:
                checked += 1
                grounded += int(row_grounded)
        return Window(start, end, outcomes, tuple(total_ms), cost, tuple(scores), grounded, checked)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _rows(
        self, start: float, end: float
    ) -> list[tuple[str, float | None, float, int | None, float | None]]:
        params = (start, end, names.ROUTE_EVAL_RUN, self.max_samples)
        with self._lock:
            try:
                if self._conn is None:
                    if not self.path.exists():
                        return []  # nothing recorded yet
                    uri = self.path.resolve().as_uri() + "?mode=ro"
                    self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
                return self._conn.execute(_QUERY, params).fetchall()
            except sqlite3.Error as exc:
                raise TraceStoreError(
                    f"the monitor cannot read traces from {self.path}: {exc}",
                    hint="check observability.trace_store",
                ) from exc

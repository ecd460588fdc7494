"""The "over time" page's figures: per UTC day of the last ``days``, from the traces the viewer
may see — requests, latency percentiles (p50/p95 of ``total``), cost per day and per answered
query, and the shares of abstentions (``cannot_answer``), degraded answers and errors.

Read from the trace store's light summaries (``TraceStore.search``, a page at a time, up to
``MAX_TRACES`` of the newest traces in the window: an embedded
dashboard, not a time-series database; Prometheus and Grafana take over beyond that, issue 12's
``/metrics``). Drift statistics come from the monitor when one runs; until then the page says
so.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from ragkeel.observability.trace_store import (
    MAX_SEARCH_LIMIT,
    TraceFilter,
    TraceStore,
    TraceSummary,
)
from ragkeel.ui.charts import LineChart, Series, line_chart
from ragkeel.ui.session import Viewer
from ragkeel.ui.traces import tenants_of

MAX_TRACES = 20_000
DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class Day:
    day: str  # YYYY-MM-DD (UTC)
    requests: int
    p50_ms: float | None
    p95_ms: float | None
    cost: float
    cost_per_answered: float | None
    abstention: float | None  # shares of the day's requests
    degraded: float | None
    errors: float | None


@dataclass(frozen=True, slots=True)
class OverTime:
    days: tuple[Day, ...]
    charts: tuple[LineChart, ...]
    traces: int  # how many traces the figures are from
    capped: bool  # MAX_TRACES reached: older days in the window are incomplete


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def summarise(day: str, traces: list[TraceSummary]) -> Day:
    n = len(traces)
    totals = [t.total_ms for t in traces if t.total_ms is not None]
    p50, p95 = (
        (float(v) for v in np.percentile(np.asarray(totals, dtype=float), [50, 95]))
        if totals
        else (None, None)
    )
    answered = sum(t.outcome == "answered" for t in traces)
    cost = sum(t.cost for t in traces)

    def share(outcome: str) -> float | None:
        return sum(t.outcome == outcome for t in traces) / n if n else None

    return Day(
        day,
        n,
        p50,
        p95,
        cost,
        cost / answered if answered else None,
        share("cannot_answer"),
        share("degraded"),
        share("error"),
    )


def over_time(store: TraceStore, viewer: Viewer, days: int, now: float | None = None) -> OverTime:
    now = time.time() if now is None else now
    start = datetime.fromtimestamp(now, UTC).date() - timedelta(days=days - 1)
    since = datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()
    by_day: dict[str, list[TraceSummary]] = defaultdict(list)
    used, before, capped = 0, None, False
    while True:  # newest first, a page at a time, up to MAX_TRACES
        where = TraceFilter(
            tenants=tenants_of(viewer), since=since, limit=MAX_SEARCH_LIMIT, before=before
        )
        page = store.search(where)
        for t in page:
            by_day[day_of(t.created_at)].append(t)
        used += len(page)
        if len(page) < MAX_SEARCH_LIMIT:
            break
        if used >= MAX_TRACES:
            capped = True
            break
        before = page[-1].id
    labels = [(start + timedelta(days=i)).isoformat() for i in range(days)]
    rows = tuple(summarise(d, by_day.get(d, [])) for d in labels)
    short = [d[5:] for d in labels]  # MM-DD
    charts = (
        line_chart(
            "Requests per day", "requests", short, [Series("requests", _v(rows, "requests"))]
        ),
        line_chart(
            "Latency (total)",
            "ms",
            short,
            [Series("p50", _v(rows, "p50_ms")), Series("p95", _v(rows, "p95_ms"), "s1")],
        ),
        line_chart(
            "Cost",
            "USD",
            short,
            [
                Series("per day", _v(rows, "cost")),
                Series("per answered query", _v(rows, "cost_per_answered"), "s1"),
            ],
        ),
        line_chart(
            "Abstention and degraded share",
            "share",
            short,
            [
                Series("cannot answer", _v(rows, "abstention")),
                Series("degraded", _v(rows, "degraded"), "s1"),
                Series("error", _v(rows, "errors"), "s2"),
            ],
        ),
    )
    return OverTime(rows, charts, used, capped)


def _v(rows: tuple[Day, ...], name: str) -> tuple[float | None, ...]:
    out: list[float | None] = []
    for row in rows:
        value = getattr(row, name)
        out.append(None if value is None else float(value))
    return tuple(out)

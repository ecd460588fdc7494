"""How long the dashboard's pages take to render (issue 12) over a trace store of ``--traces``
traces (default 20,000; full traces as ``testing.contracts.trace_store.full_trace`` makes them,
with the prompt text, spread over the last 14 days, a fifth of them cannot_answer, some rated):
server time of each page through the real app (``TestClient``, auth off), p50/p95 over
``--repeats`` requests.

    .venv/bin/python bench/dashboard_pages.py [--traces 20000] [--repeats 30]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from fastapi.testclient import TestClient

from common import commit, machine, pct, today
from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.observability.feedback import Feedback
from ragkeel.observability.trace import new_trace_id
from ragkeel.settings import load_settings
from ragkeel.testing.contracts.trace_store import full_trace

DAY_S = 86_400
PAGES = {
    "traces (newest 50)": "/ui/traces",
    "traces, text filter": "/ui/traces?q=rotate",
    "traces, outcome filter": "/ui/traces?outcome=cannot_answer",
    "one trace": "/ui/traces/{id}",
    "over time, 14 days": "/ui/overtime?days=14",
    "health": "/ui/health",
}


def seed(container: Container, n: int) -> str:
    """``n`` traces over the last 14 days; the id of the newest."""
    now = time.time()
    traces = container.traces
    feedback = container.feedback
    assert feedback is not None
    last = ""
    for i in range(n):
        created = now - 14 * DAY_S * (n - i) / n
        outcome = "cannot_answer" if i % 5 == 0 else "answered"
        t = replace(full_trace(outcome), id=new_trace_id(), created_at=created, tenant="default")
        last = traces.record(t) or last
        if i % 50 == 0:
            feedback.add(Feedback(t.id, "down" if i % 100 == 0 else "up", "default"))
    return last


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp), embedding={"provider": "hashing"})
        container = Container(settings)
        started = time.perf_counter()
        newest = seed(container, args.traces)
        seeded_s = time.perf_counter() - started
        size_mb = settings.trace_store_path.stat().st_size / 2**20
        results = {}
        with TestClient(create_app(container)) as client:
            for name, path in PAGES.items():
                url = path.format(id=newest)
                assert client.get(url).status_code == 200, url  # warm
                ms = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    r = client.get(url)
                    ms.append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200
                results[name] = {"p50_ms": round(pct(ms, 50), 1), "p95_ms": round(pct(ms, 95), 1)}
    print(
        json.dumps(
            {
                "date": today(),
                "commit": commit(),
                "machine": machine(),
                "traces": args.traces,
                "trace_db_mb": round(size_mb, 1),
                "seed_s": round(seeded_s, 1),
                "repeats": args.repeats,
                "pages": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""How big the trace store gets, and what retention costs (issue 12).

1. Size: N requests' traces (default 10,000) written into a fresh ``SqliteTraceStore``, with
   and without the prompt text (``observability.keep_prompt_text``); the file's size after
   the WAL is checkpointed, in MB per 10,000 requests and bytes per trace. Each trace is as big
   as a real ``ask`` trace (``trace_overhead.sample_answer``: 8 retrieved chunks with both
   retrievers' ranks and scores, the gate, a ~4,000-character packed prompt of the chunks'
   text, a ~400-character answer with 2 citations and their snippets, 9 stage latencies) plus a
   gateway log of two attempts (a failed primary, the backup that answered) and a fallback
   decision.
2. Retention: the same store capped at half its size (``Retention(max_bytes=...)``); one
   ``sweep`` (delete the oldest in batches, give the pages back) while a writer thread keeps
   recording traces as a busy server would; the sweep's time, the file before and after, and
   the writer's ``record`` latency during the sweep against before it (p50/p99/max, µs) —
   what a request waits for while retention runs; then one more sweep after ``--writes``
   more traces (a steady state: each sweep trims what arrived since the last).

    .venv/bin/python bench/trace_size.py [--requests 10000] [--dir bench/out]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import REPO, commit, machine, pct, today
from ragkeel.generation.tracing import trace_from_answer
from ragkeel.observability.names import ROUTE_API_QUERY
from ragkeel.observability.trace import Trace
from ragkeel.observability.trace_store import Retention, SqliteTraceStore
from trace_overhead import sample_answer

GATEWAY: dict[str, Any] = {
    "served_by": "backup",
    "rung": 1,
    "cost": 0.00231,
    "queue_ms": 0.412,
    "attempts": [
        {
            "deployment": "primary",
            "outcome": "error",
            "latency_ms": 2001.377,
            "code": "MODEL_TIMEOUT",
            "status": None,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost": 0.0,
        },
        {
            "deployment": "backup",
            "outcome": "ok",
            "latency_ms": 811.204,
            "code": None,
            "status": 200,
            "prompt_tokens": 1012,
            "completion_tokens": 96,
            "cost": 0.00231,
        },
    ],
    "decisions": [
        {"policy": "router", "reason": "strong (default): no routing hints"},
        {"policy": "fallback", "reason": "primary failed (MODEL_TIMEOUT)"},
    ],
}


def traces(n: int, start: int, keep_text: bool) -> list[Trace]:
    out = []
    for i in range(start, start + n):
        t = trace_from_answer(sample_answer(i), route=ROUTE_API_QUERY, keep_prompt_text=keep_text)
        out.append(dataclasses.replace(t, tenant="team-a", gateway=GATEWAY, cost=0.00231))
    return out


def us(samples: list[float]) -> dict[str, float]:
    return {
        "p50": round(pct(samples, 50), 1),
        "p99": round(pct(samples, 99), 1),
        "max": round(max(samples), 1) if samples else float("nan"),
        "n": len(samples),
    }


def size_run(directory: Path, requests: int, keep_text: bool) -> dict[str, Any]:
    path = directory / f"traces-{'text' if keep_text else 'hash'}.db"
    store = SqliteTraceStore(path, keep_prompt_text=keep_text)
    batch = traces(requests, 0, keep_text)
    for t in batch:
        store.record(t)
    dropped = store.dropped
    store.close()  # checkpoints the WAL into the file
    size = path.stat().st_size
    return {
        "keep_prompt_text": keep_text,
        "requests": requests,
        "file_mb": round(size / 2**20, 2),
        "mb_per_10k_requests": round(size / 2**20 * 10_000 / requests, 1),
        "bytes_per_trace": round(size / requests),
        "dropped": dropped,
        "path": path,
    }


def retention_run(path: Path, writes: int) -> dict[str, Any]:
    size = path.stat().st_size
    cap = size // 2
    store = SqliteTraceStore(path, retention=Retention(max_age_s=None, max_bytes=cap))
    fresh = traces(writes, 10**7, keep_text=True)
    before_us: list[float] = []
    for t in fresh[: writes // 2]:  # the same writer before the sweep, for comparison
        t0 = time.perf_counter_ns()
        store.record(t)
        before_us.append((time.perf_counter_ns() - t0) / 1000)
    during_us: list[float] = []
    sweeping = threading.Event()
    done = threading.Event()

    def writer() -> None:
        sweeping.wait(10)
        for t in fresh[writes // 2 :]:
            if done.is_set():
                break
            t0 = time.perf_counter_ns()
            store.record(t)
            during_us.append((time.perf_counter_ns() - t0) / 1000)
            time.sleep(0.001)  # ~1,000 requests/s at most: a busy server's trace writes

    thread = threading.Thread(target=writer)
    thread.start()
    sweeping.set()
    report = store.sweep()
    done.set()
    thread.join(60)
    for t in traces(writes, 2 * 10**7, keep_text=True):  # a minute of traffic past the cap
        store.record(t)
    steady = store.sweep()
    dropped = store.dropped
    store.close()
    return {
        "cap_mb": round(cap / 2**20, 2),
        "file_mb_before": round(size / 2**20, 2),
        "file_mb_after": round(path.stat().st_size / 2**20, 2),
        "live_mb_before": round(report.live_bytes_before / 2**20, 2),
        "live_mb_after": round(report.live_bytes_after / 2**20, 2),
        "deleted": report.deleted_by_size,
        "sweep_ms": round(report.ms, 1),
        "record_us_before_sweep": us(before_us),
        "record_us_during_sweep": us(during_us),
        "next_sweep_after_more_writes": {
            "writes": writes,
            "deleted": steady.deleted_by_size,
            "sweep_ms": round(steady.ms, 1),
            "live_mb_after": round(steady.live_bytes_after / 2**20, 2),
        },
        "dropped": dropped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--writes", type=int, default=1000, help="writes around the sweep")
    parser.add_argument("--dir", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="trace-size-", dir=args.dir))
    try:
        sizes = [size_run(work, args.requests, keep) for keep in (True, False)]
        retention = retention_run(sizes[0]["path"], args.writes)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for s in sizes:
        del s["path"]
    print(
        json.dumps(
            {
                "bench": "trace_size",
                "date": today(),
                "commit": commit(),
                "machine": machine(),
                "sizes": sizes,
                "retention_sweep_to_half": retention,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

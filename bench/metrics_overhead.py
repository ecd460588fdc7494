"""What metrics and structured logs cost a request (issue 12).

1. ``Metrics.observe_trace`` alone (and entering a request context: a fresh trace id and the
   context variable set and reset, what every HTTP request pays), in microseconds (p50/p95/p99) over N calls (default
   5,000, after 200 warm-up calls) with a realistic trace (``trace_overhead.sample_answer``:
   8 hits, a gate decision, tokens, cost, stage latencies, one gateway attempt); in a
   single-process registry and, in a child process, in multiprocess mode
   (``PROMETHEUS_MULTIPROC_DIR`` on the bench/out disk: every value written to an mmap file).
2. One JSON log line (the ``answer <outcome>`` line ``api/tracing.py`` writes per answer)
   through ``configure_logging("json")`` into a null stream, same counts.
3. A scrape: ``Metrics.exposition()`` after those calls, ms.
4. The whole request, extractive path, in process (FastAPI ``TestClient``, no sockets, no
   model): ``POST /v1/query`` with ``mode: extractive`` against an app with
   ``observability.metrics: auto`` and JSON logs at info (on), and one with
   ``observability.metrics: off`` and logging not configured (off), alternating in rounds
   (``--requests`` per arm, default 2,000); p50/p95 in ms per arm and the difference. The trace
   store records in both arms; the request context middleware runs in both.

Prints one JSON object.

    .venv/bin/python bench/metrics_overhead.py [--calls 5000] [--requests 2000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from common import REPO, commit, machine, pct, today
from ragkeel.api import create_app
from ragkeel.api.tracing import _log_fields
from ragkeel.container import Container
from ragkeel.generation.tracing import trace_from_answer
from ragkeel.observability.context import request_context
from ragkeel.observability.logs import configure_logging
from ragkeel.observability.metrics import Metrics
from ragkeel.settings import load_settings
from trace_overhead import sample_answer

WARMUP = 200
QUESTION = "How often should I rotate an API key?"
DOC = (
    "# API keys\n\nRotate every API key every ninety days from the admin console under "
    "Security. Revoked keys stop working within a minute.\n\n# Outages\n\nDuring an outage "
    "the status page is updated every fifteen minutes.\n"
)


def _timed_us(fn: Callable[[], Any], n: int) -> list[float]:
    for _ in range(WARMUP):
        fn()
    out = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


def _summary(samples: list[float], unit: str) -> dict[str, float]:
    return {
        f"{q}_{unit}": round(pct(samples, p), 2) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))
    }


def micro(calls: int) -> dict[str, Any]:
    """observe_trace, one JSON log line, one scrape: in this process's mode."""
    trace = replace(
        trace_from_answer(sample_answer(1), route="/v1/query", keep_prompt_text=False),
        tenant="acme",
        cost=0.0004,
        gateway={"attempts": [{"deployment": "d0", "outcome": "ok"}]},
    )
    metrics = Metrics()
    observe = _timed_us(lambda: metrics.observe_trace(trace), calls)

    def enter_context() -> None:
        with request_context("/v1/query"):
            pass

    context = _timed_us(enter_context, calls)
    start = time.perf_counter()
    body, _ = metrics.exposition()
    scrape_ms = (time.perf_counter() - start) * 1000
    with open(os.devnull, "w") as null:
        handler = configure_logging("json", stream=null)
        log = logging.getLogger("ragkeel.api")
        fields = _log_fields(trace, False)
        line = _timed_us(lambda: log.info("answer %s", trace.outcome, extra=fields), calls)
        logging.getLogger().removeHandler(handler)
    return {
        "multiprocess": metrics.multiprocess,
        "observe_trace": _summary(observe, "us"),
        "request_context": _summary(context, "us"),
        "json_log_line": _summary(line, "us"),
        "scrape_ms": round(scrape_ms, 2),
        "scrape_bytes": len(body),
    }


def micro_multiprocess(calls: int, directory: Path) -> dict[str, Any]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, __file__, "--micro-only", "--calls", str(calls)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _app(home: Path, docs: Path, metrics: str) -> tuple[Container, Any]:
    settings = load_settings(
        home=home,
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        generation={"provider": "none", "gate_threshold": 0.05},
        observability={"metrics": metrics},
    )
    container = Container(settings)
    assert container.pipeline.ingest([str(docs)], "kb").exit_code == 0
    return container, create_app(container)


def end_to_end(requests: int, rounds: int, work: Path) -> dict[str, Any]:
    docs = work / "docs"
    docs.mkdir()
    (docs / "keys.md").write_text(DOC)
    body = {"question": QUESTION, "collection": "kb", "mode": "extractive"}
    samples: dict[str, list[float]] = {"on": [], "off": []}
    root = logging.getLogger()
    with open(os.devnull, "w") as null:
        apps = {arm: _app(work / arm, docs, "auto" if arm == "on" else "off") for arm in samples}
        clients = {arm: TestClient(app) for arm, (_, app) in apps.items()}
        for c in clients.values():
            c.__enter__()
        try:
            for arm, c in clients.items():  # warm-up
                for _ in range(WARMUP):
                    assert c.post("/v1/query", json=body).json()["mode"] == "extractive", arm
            per_round = max(1, requests // rounds)
            for _ in range(rounds):
                for arm in ("on", "off") if _ % 2 == 0 else ("off", "on"):
                    handler = configure_logging("json", stream=null) if arm == "on" else None
                    if handler is None:
                        root.setLevel(logging.WARNING)
                    c = clients[arm]
                    for _i in range(per_round):
                        start = time.perf_counter()
                        r = c.post("/v1/query", json=body)
                        samples[arm].append((time.perf_counter() - start) * 1000)
                        assert r.status_code == 200
                    if handler is not None:
                        root.removeHandler(handler)
            scraped = clients["on"].get("/metrics").text
        finally:
            for c in clients.values():
                c.__exit__(None, None, None)
    assert 'ragkeel_requests_total{outcome="answered",route="/v1/query"}' in scraped
    out: dict[str, Any] = {arm: _summary(v, "ms") for arm, v in samples.items()}
    out["added_p50_ms"] = round(out["on"]["p50_ms"] - out["off"]["p50_ms"], 3)
    out["added_p95_ms"] = round(out["on"]["p95_ms"] - out["off"]["p95_ms"], 3)
    out["requests_per_arm"] = len(samples["on"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--micro-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.micro_only:
        print(json.dumps(micro(args.calls)))
        return
    out_dir = REPO / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="metrics-overhead-", dir=out_dir))
    try:
        single = micro(args.calls)
        multi_dir = work / "multiproc"
        multi_dir.mkdir()
        multi = micro_multiprocess(args.calls, multi_dir)
        e2e = end_to_end(args.requests, args.rounds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        json.dumps(
            {
                "bench": "metrics_overhead",
                "date": today(),
                "commit": commit(),
                "machine": machine(),
                "calls": args.calls,
                "single_process": single,
                "multiprocess": multi,
                "extractive_request": e2e,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

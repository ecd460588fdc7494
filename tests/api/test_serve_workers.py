"""Issue 12, "multiprocess mode": ``ragkeel serve --workers 2`` as a real process tree on a free
loopback port, answering with a failing provider fake (``FaultServer``, HTTP 500) so every
answer degrades to extractive and the monitor's ``degraded_share`` alert fires.

What must hold: the requests spread over both workers (the ``pid`` of the access log lines);
``/metrics``, whichever worker answers the scrape, counts every worker's requests; the alert
reaches the webhook once, not once per worker (``observability/monitor/lease.py``); SIGTERM
drains each worker and the whole tree exits cleanly."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fake_http import WebhookSink, serving
from ragkeel.container import Container
from ragkeel.testing import FaultServer, FaultSettings
from ragkeel.testing.replicas import Replicas

from .conftest import ON_TOPIC, serve_env, wait_for

QUERIES = 12
EXIT_WITHIN_S = 30.0  # drain (1 s) + flush (3 s) + two interpreters tearing down, loaded machine


@pytest.fixture
def hook() -> Iterator[WebhookSink]:
    server = WebhookSink()
    with serving(server):
        yield server


def _requests_total(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text  # a new connection: any worker
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        if family.name == "ragkeel_requests"
        for s in family.samples
        if s.name == "ragkeel_requests_total"
    )


def _json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_two_workers_share_the_port_the_metrics_the_alerts_and_drain(
    container: Container, hook: WebhookSink, tmp_path: Path
) -> None:
    env = {
        **serve_env(container.home, "unused"),  # the fixture's indexed home
        "RAGKEEL_SERVER__WORKERS": "2",
        "RAGKEEL_SERVER__DRAIN_S": "1",
        "RAGKEEL_GATEWAY__RETRY__MAX_RETRIES": "0",
        "RAGKEEL_OBSERVABILITY__METRICS": "public",
        "RAGKEEL_MONITOR__INTERVAL_S": "1",
        "RAGKEEL_MONITOR__MIN_SAMPLES": "5",
        "RAGKEEL_MONITOR__WEBHOOK__URL": f"{hook.origin}/alerts",
    }
    with FaultServer(FaultSettings(error_rate=1.0, error="500")) as provider:
        env["RAGKEEL_GENERATION__OPENAI__BASE_URL"] = provider.base_url
        with Replicas(1, env, log_dir=tmp_path / "logs") as (served,):
            base = served.url

            def ask(_: int) -> httpx.Response:  # one connection each: the kernel spreads them
                return httpx.post(f"{base}/v1/query", json={"question": ON_TOPIC}, timeout=30)

            with ThreadPoolExecutor(4) as pool:
                for r in pool.map(ask, range(QUERIES)):
                    assert r.status_code == 200, r.text
            # every scrape, whichever worker answers it, counts both workers' requests
            assert [_requests_total(base) for _ in range(6)] == [float(QUERIES)] * 6

            assert wait_for(lambda: len(hook.requests) >= 1, timeout_s=30), "no alert sent"
            time.sleep(3.0)  # three more evaluations in each worker: a duplicate would show
            sent = [(body["rule"], body["status"]) for _, _, body in hook.requests]
            assert ("degraded_share", "firing") in sent, sent
            assert len(sent) == len(set(sent)), f"an alert was sent twice: {sent}"

            started = time.monotonic()
            served.stop(timeout_s=EXIT_WITHIN_S)  # SIGTERM; SIGKILL only past the bound
            seconds = time.monotonic() - started
            err = served.log_text()

    assert "Traceback" not in err, err
    lines = _json_lines(err)
    answered = {
        line["pid"] for line in lines if line.get("path") == "/v1/query" and line.get("status")
    }
    assert len(answered) == 2, f"the queries were not spread over two workers: {answered}"
    drained = {line["pid"] for line in lines if str(line["message"]).startswith("draining")}
    assert drained == answered, (drained, answered)  # each worker drained on its SIGTERM
    assert seconds < EXIT_WITHIN_S
    assert served.proc is not None and served.proc.returncode == 0, served.proc

"""``observability/metrics.py`` on its own: what a trace records, the scrape-time gauges, and
multiprocess mode (separate processes writing into one ``PROMETHEUS_MULTIPROC_DIR``, merged by
the process that answers the scrape)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ragkeel.observability.metrics import Metrics, ScrapeGauge
from ragkeel.observability.trace import Trace
from ragkeel.types import GateDecision

SRC = str(Path(__file__).resolve().parents[2] / "src")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def answered(**kw: object) -> Trace:
    gate = GateDecision(True, "dense", 0.62, None, 0.3, None)
    fields: dict[str, object] = {
        "route": "/v1/query",
        "question": "q",
        "outcome": "answered",
        "model": "m",
        "tenant": "acme",
        "input_tokens": 100,
        "output_tokens": 20,
        "cost": 0.002,
        "grounded": True,
        "gate": gate,
        "latency_ms": {"retrieve": 12.0, "first_token": 300.0, "total": 900.0},
        "gateway": {"attempts": [{"deployment": "d0", "outcome": "ok"}]},
    }
    fields.update(kw)
    return Trace(**fields)  # type: ignore[arg-type]


def test_a_trace_is_recorded_once_in_every_series() -> None:
    m = Metrics()
    m.observe_trace(answered())
    m.observe_trace(answered(grounded=False, outcome="degraded"))
    m.observe_trace(Trace(route="/v1/query", question="q", outcome="error"))
    body, content_type = m.exposition()
    got = samples(body.decode())
    assert content_type.startswith("text/plain")
    assert (
        got[
            ("ragkeel_requests_total", frozenset({("route", "/v1/query"), ("outcome", "answered")}))
        ]
        == 1
    )
    tokens = (
        "ragkeel_tokens_total",
        frozenset({("model", "m"), ("tenant", "acme"), ("direction", "input")}),
    )
    assert got[tokens] == 200
    cost = got[("ragkeel_cost_usd_total", frozenset({("model", "m"), ("tenant", "acme")}))]
    assert cost == pytest.approx(0.004)
    grounded = frozenset({("route", "/v1/query")})
    assert (
        got[("ragkeel_answer_grounded_sum", grounded)],
        got[("ragkeel_answer_grounded_count", grounded)],
    ) == (1, 2)
    top = frozenset({("route", "/v1/query"), ("signal", "dense"), ("le", "0.65")})
    assert got[("ragkeel_retrieval_top_score_bucket", top)] == 2
    first = frozenset({("route", "/v1/query"), ("stage", "first_token"), ("le", "0.5")})
    assert got[("ragkeel_stage_duration_seconds_bucket", first)] == 2
    assert all(name.startswith("ragkeel_") for name, _ in got)


def test_embedding_cache_totals_are_counted_as_they_grow() -> None:
    counts = [(0, 0)]
    m = Metrics()
    m.watch_embedding_cache(lambda: counts[-1])
    counts.append((3, 1))
    m.observe_trace(answered())
    counts.append((5, 1))
    got = samples(m.exposition()[0].decode())
    assert got[("ragkeel_embedding_cache_lookups_total", frozenset({("result", "hit")}))] == 5
    assert got[("ragkeel_embedding_cache_lookups_total", frozenset({("result", "miss")}))] == 1


def test_a_scrape_gauge_that_fails_is_left_out_not_fatal() -> None:
    def broken() -> list[tuple[tuple[str, ...], float]]:
        raise OSError("disk gone")

    m = Metrics()
    m.add_collector(ScrapeGauge("ragkeel_ok", "fine", ("x",), lambda: [(("a",), 2.0)]))
    m.add_collector(ScrapeGauge("ragkeel_broken", "fails", ("x",), broken))
    got = samples(m.exposition()[0].decode())
    assert got[("ragkeel_ok", frozenset({("x", "a")}))] == 2
    assert not any(name == "ragkeel_broken" for name, _ in got)
    with pytest.raises(ValueError, match="ragkeel_"):
        ScrapeGauge("other", "no prefix", (), lambda: [])


WRITER = """
import sys
from ragkeel.observability.metrics import Metrics
from ragkeel.observability.trace import Trace
m = Metrics()
assert m.multiprocess
for _ in range(int(sys.argv[1])):
    m.observe_trace(Trace(route="/v1/query", question="q", outcome="answered", model="m",
                          tenant="t", input_tokens=10, latency_ms={"total": 50.0}))
m.admission_rejected("in_flight")
"""
SCRAPER = """
from ragkeel.observability.metrics import Metrics, ScrapeGauge
m = Metrics()
m.add_collector(ScrapeGauge("ragkeel_index_chunks", "c", ("collection",), lambda: [(("docs",), 7.0)]))
print(m.exposition()[0].decode())
"""


def test_two_processes_write_one_directory_and_a_scrape_sums_them(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def run(code: str, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    writers = [subprocess.Popen([sys.executable, "-c", WRITER, n], env=env) for n in ("3", "4")]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    assert len(list(tmp_path.glob("*.db"))) >= 2  # one file per process and metric type
    got = samples(run(SCRAPER))
    answered_ = frozenset({("route", "/v1/query"), ("outcome", "answered")})
    assert got[("ragkeel_requests_total", answered_)] == 7
    tokens = frozenset({("model", "m"), ("tenant", "t"), ("direction", "input")})
    assert got[("ragkeel_tokens_total", tokens)] == 70
    total = frozenset({("route", "/v1/query"), ("stage", "total")})
    assert got[("ragkeel_stage_duration_seconds_count", total)] == 7
    assert got[("ragkeel_admission_rejections_total", frozenset({("reason", "in_flight")}))] == 2
    assert got[("ragkeel_index_chunks", frozenset({("collection", "docs")}))] == 7
    assert all(name.startswith("ragkeel_") for name, _ in got)


def test_disabled_metrics_record_nothing() -> None:
    m = Metrics(enabled=False)
    m.watch_embedding_cache(lambda: (5, 5))
    m.observe_trace(answered())
    m.admission_rejected("in_flight")
    m.auth_failed("UNAUTHENTICATED")
    m.add_collector(ScrapeGauge("ragkeel_ok", "fine", (), lambda: [((), 1.0)]))
    assert m.exposition()[0] == b""

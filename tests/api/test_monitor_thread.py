"""The alert monitor's thread in the API's lifespan (``create_app(..., monitor=True)``, as
``ragkeel serve`` runs it): it evaluates the traces the app's own requests wrote, and stops
with the app."""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from corpus import COLLECTION, ON_TOPIC
from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.settings import load_settings

from .conftest import GOOD, TEST_GATE, wait_for


def _monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ragkeel-monitor"]


def test_the_app_runs_the_monitor_over_its_own_traces(tmp_path: Path, corpus: Path) -> None:
    settings = load_settings(
        home=tmp_path / "home",
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
        monitor={"interval_s": 1, "min_samples": 5},
    )
    container = Container(settings)
    assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
    policy = AnswerPolicy(gate_threshold=TEST_GATE, template_version="answer_v1")
    answerer = Answerer(container.retriever, ScriptedChatModel((GOOD,)), policy)
    app = create_app(container, answerer=answerer, monitor=True)
    with TestClient(app) as client:
        assert len(_monitor_threads()) == 1
        for _ in range(6):
            response = client.post("/v1/query", json={"question": ON_TOPIC})
            assert response.status_code == 200, response.text
        seen = lambda: (e := container.monitor.last()) is not None and e.current.requests >= 6  # noqa: E731
        assert wait_for(seen, timeout_s=15)
        results = {r.rule: r for r in container.monitor.last().results}  # type: ignore[union-attr]
        assert results["error_share"].status == "ok" and results["error_share"].samples == 6
    assert _monitor_threads() == []


def test_without_monitor_the_app_starts_no_thread(tmp_path: Path, corpus: Path) -> None:
    container = Container(load_settings(home=tmp_path / "home"))
    with TestClient(create_app(container)):
        assert _monitor_threads() == []


def test_the_dashboard_shows_the_running_monitors_alerts_and_drift(
    tmp_path: Path, corpus: Path
) -> None:
    """The monitor's firing alerts reach the dashboard's banner and health page, and its last
    drift verdicts the over-time page (they showed "monitor not running" while one ran)."""
    settings = load_settings(
        home=tmp_path / "home",
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
        monitor={"interval_s": 1, "min_samples": 5, "rules": {"p95_latency_ms": 0.001}},
    )
    container = Container(settings)
    assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
    policy = AnswerPolicy(gate_threshold=TEST_GATE, template_version="answer_v1")
    answerer = Answerer(container.retriever, ScriptedChatModel((GOOD,)), policy)
    with TestClient(create_app(container, answerer=answerer, monitor=True)) as client:
        for _ in range(6):
            assert client.post("/v1/query", json={"question": ON_TOPIC}).status_code == 200
        assert wait_for(lambda: bool(container.monitor.firing()), timeout_s=15)
        health = client.get("/ui/health")
        assert health.status_code == 200
        alerts_html = health.text.split('id="alerts"')[1][:400]
        assert "latency_p95" in alerts_html and "alert firing" in health.text, alerts_html
        assert "No alert is firing" not in health.text
        over_time = client.get("/ui/overtime").text
        assert "drift-rules" in over_time and "score_drift" in over_time
        assert "Monitor not running" not in over_time
        # the same alert as a Prometheus gauge, and a rating counted
        trace_id = client.post("/v1/query", json={"question": ON_TOPIC}).json()["trace_id"]
        rated = client.post("/v1/feedback", json={"trace_id": trace_id, "rating": "down"})
        assert rated.status_code == 201, rated.text
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(client.get("/metrics").text)
            for s in family.samples
        }
        firing = ("rule", "latency_p95"), ("severity", "warning")
        assert samples[("ragkeel_alert_firing", firing)] == 1.0
        quiet = ("rule", "error_share"), ("severity", "critical")
        assert samples[("ragkeel_alert_firing", quiet)] == 0.0
        assert samples[("ragkeel_feedback_total", (("rating", "down"),))] == 1.0

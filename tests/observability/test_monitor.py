"""The monitor over a real trace store: synthetic traffic (``ragkeel.testing.traffic``) with
real top retrieval scores (``monitor_data``: SciFact claims against a SciFact slice; XQuAD
questions against it are the planted drift). Each planted fault fires its alert within one
window; steady traffic fires nothing; alerts resolve without flapping; the webhook gets JSON
and is retried with backoff against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import monitor_data
from fake_http import WebhookSink, serving
from ragkeel.clock import ManualClock
from ragkeel.errors import ConfigError
from ragkeel.http_retry import Backoff
from ragkeel.observability.cost_ledger import SqliteCostLedger
from ragkeel.observability.monitor import AlertBook, Monitor, TraceWindows, WebhookNotifier
from ragkeel.observability.monitor.gauge import alert_readings
from ragkeel.observability.monitor.monitor import ledger_spend
from ragkeel.observability.monitor.rules import RULES, RuleResult
from ragkeel.observability.trace import new_trace_id
from ragkeel.observability.trace_store import SqliteTraceStore
from ragkeel.settings import MonitorRuleSettings, MonitorSettings, load_settings
from ragkeel.testing.traffic import TrafficProfile, traffic

NOW = 1_796_000_000.0  # Unix seconds (2026-11-30)
HOUR = 3_600.0
DAY = 86_400.0
PLAIN = TrafficProfile(top_scores=tuple(0.3 + i / 500 for i in range(100)), gate_threshold=0.3)


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[float, ...]]:
    if not monitor_data.DATASETS.is_dir():
        pytest.skip("../shared/datasets not present")
    claims, judged = monitor_data.scifact_train(150)
    retriever = monitor_data.index_scifact(tmp_path_factory.mktemp("scifact"), judged, 200)
    try:
        return {
            "scifact": monitor_data.top_dense(retriever, claims),
            "xquad": monitor_data.top_dense(retriever, monitor_data.xquad_questions(150)),
        }
    finally:
        retriever.close()


@pytest.fixture
def steady(scores: dict[str, tuple[float, ...]]) -> TrafficProfile:
    return TrafficProfile(top_scores=scores["scifact"], gate_threshold=0.25)


@pytest.fixture
def plain() -> TrafficProfile:
    """Steady traffic with made-up scores, for the rules that do not look at them."""
    return PLAIN


@pytest.fixture
def traces(tmp_path: Path) -> Iterator[SqliteTraceStore]:
    store = SqliteTraceStore(tmp_path / "traces.db")
    yield store
    store.close()


def monitor(store: SqliteTraceStore, **changes: Any) -> Monitor:
    settings = MonitorSettings(**changes)
    return Monitor(settings, TraceWindows(store.path), clock=ManualClock(start=NOW))


def write(
    store: SqliteTraceStore,
    profile: TrafficProfile,
    *,
    reference: TrafficProfile | None = None,
    current_n: int = 240,
    reference_n: int = 2_400,
    seed: int = 7,
) -> None:
    """A day of reference traffic, then the last hour's (``profile``)."""
    rng = random.Random(seed)
    before = traffic(
        reference or profile, reference_n, start=NOW - HOUR - DAY, end=NOW - HOUR, rng=rng
    )
    now = traffic(profile, current_n, start=NOW - HOUR, end=NOW, rng=rng)
    for t in before + now:
        store.record(t)


def fired(m: Monitor) -> set[str]:
    return {a.rule for a in m.tick() if a.status == "firing"}


def test_steady_traffic_fires_nothing(traces: SqliteTraceStore, steady: TrafficProfile) -> None:
    write(traces, steady)
    m = monitor(traces)
    assert fired(m) == set()
    evaluation = m.last()
    assert evaluation is not None and evaluation.current.requests == 240
    statuses = {r.rule: r.status for r in evaluation.results}
    assert statuses["score_drift"] == statuses["grounded_drift"] == "ok"
    assert statuses["latency_p95"] == statuses["cost_spike"] == "ok"
    assert statuses["spend_per_day"] == statuses["cost_per_answer"] == "off"  # no target set
    assert m.firing() == []


def test_queries_from_another_data_set_fire_score_drift(
    traces: SqliteTraceStore, steady: TrafficProfile, scores: dict[str, tuple[float, ...]]
) -> None:
    write(traces, replace(steady, top_scores=scores["xquad"]), reference=steady)
    m = monitor(traces)
    assert "score_drift" in fired(m)
    drift = next(r for r in m.last().results if r.rule == "score_drift")  # type: ignore[union-attr]
    assert drift.value is not None and drift.value >= 0.2
    assert drift.details["p_value"] < 0.001 and drift.details["psi"] > 0.1
    assert drift.details["mean"] < drift.details["reference_mean"]


def test_cost_spike_fires(traces: SqliteTraceStore, plain: TrafficProfile) -> None:
    # a route change sends every question to a model 10x the price
    write(traces, replace(plain, input_per_mtok=1.5, output_per_mtok=6.0), reference=plain)
    assert fired(monitor(traces)) == {"cost_spike"}


def test_cost_target_fires(traces: SqliteTraceStore, plain: TrafficProfile) -> None:
    write(traces, plain)  # about USD 0.00027 an answer
    m = monitor(traces, rules=MonitorRuleSettings(cost_per_answer_usd=0.0002))
    assert fired(m) == {"cost_per_answer"}


def test_latency_regression_fires(traces: SqliteTraceStore, plain: TrafficProfile) -> None:
    write(traces, replace(plain, latency_median_ms=2_700.0), reference=plain)
    assert fired(monitor(traces)) == {"latency_regression"}


def test_latency_target_fires(traces: SqliteTraceStore, plain: TrafficProfile) -> None:
    write(traces, plain)
    assert fired(monitor(traces, rules=MonitorRuleSettings(p95_latency_ms=1_000))) == {
        "latency_p95"
    }


def test_grounded_share_drop_fires(traces: SqliteTraceStore, plain: TrafficProfile) -> None:
    write(traces, replace(plain, grounded=0.6), reference=plain)
    assert fired(monitor(traces)) == {"grounded_drift"}


def test_errors_and_degraded_answers_fire(traces: SqliteTraceStore, plain: TrafficProfile) -> None:
    write(traces, replace(plain, error=0.2, degraded=0.5), reference=plain)
    assert {"error_share", "degraded_share"} <= fired(monitor(traces))


def test_a_tiny_window_does_not_fire(
    traces: SqliteTraceStore, steady: TrafficProfile, scores: dict[str, tuple[float, ...]]
) -> None:
    drifted = replace(steady, top_scores=scores["xquad"], error=0.5, latency_median_ms=9_000.0)
    write(traces, drifted, reference=steady, current_n=12)
    m = monitor(traces)
    assert fired(m) == set()
    statuses = {r.rule: r.status for r in m.last().results}  # type: ignore[union-attr]
    assert statuses["score_drift"] == statuses["error_share"] == "no_data"


def test_spend_per_day_reads_the_cost_ledger(
    traces: SqliteTraceStore, plain: TrafficProfile, tmp_path: Path
) -> None:
    ledger = SqliteCostLedger(tmp_path / "costs.db")
    for tenant, cost, at in (("a", 3.0, NOW - 60), ("b", 2.5, NOW - 30), ("a", 9.0, NOW - DAY)):
        ledger.record(
            tenant=tenant,
            model="gpt-4o",
            prompt_tokens=9,
            completion_tokens=5,
            cost=cost,
            outcome="ok",
            ts=at,
        )
    write(traces, plain)
    settings = MonitorSettings(rules=MonitorRuleSettings(spend_per_day_usd=5.0))
    m = Monitor(
        settings,
        TraceWindows(traces.path),
        spent_on=ledger_spend(ledger),
        clock=ManualClock(start=NOW),
    )
    try:
        results = {r.rule: r for r in m.evaluate().results}
        assert results["spend_per_day"].status == "breach"
        assert results["spend_per_day"].value == pytest.approx(5.5)
    finally:
        ledger.close()


def test_an_empty_home_has_no_data(tmp_path: Path) -> None:
    m = Monitor(MonitorSettings(), TraceWindows(tmp_path / "none.db"), clock=ManualClock(NOW))
    assert {r.status for r in m.evaluate().results} <= {"no_data", "off"}
    assert not (tmp_path / "none.db").exists()  # reading creates nothing


def _result(rule: str, breach: bool, value: float = 1.0) -> RuleResult:
    return RuleResult(rule, "breach" if breach else "ok", value, 0.5, 100, f"{rule} {value}")


def test_alerts_fire_and_resolve_without_flapping() -> None:
    book = AlertBook(fire_after=2, resolve_after=3)
    span = {"start": 0.0, "end": 1.0, "seconds": 1.0}
    history = [True, True, False, True, False, False, False, False]
    changes = [
        [(a.rule, a.status) for a in book.update([_result("error_share", b)], window=span, at=t)]
        for t, b in enumerate(history)
    ]
    assert changes == [
        [],
        [("error_share", "firing")],  # the second breach in a row
        [],  # one clear evaluation: still firing
        [],
        [],
        [],
        [("error_share", "resolved")],  # the third clear one in a row
        [],
    ]
    assert book.firing() == []


# -- the webhook --


_Hook = WebhookSink  # answers each POST with the next scripted status (default 200)


@pytest.fixture
def hook() -> Iterator[_Hook]:
    server = _Hook()
    with serving(server):
        yield server


def notifier(url: str, clock: ManualClock, **kw: Any) -> WebhookNotifier:
    return WebhookNotifier(
        url,
        {"Authorization": "Bearer hook-secret"},
        backoff=Backoff(1.0, 8.0, random.Random(3)),
        clock=clock,
        **kw,
    )


def test_webhook_retries_with_backoff_until_delivered(hook: _Hook) -> None:
    hook.then(503, 429)
    clock = ManualClock()
    n = notifier(hook.origin + "/alerts", clock)
    try:
        assert n.send({"rule": "error_share", "status": "firing"})
    finally:
        n.close()
    assert len(hook.requests) == 3 and n.sent == 1 and n.failed == 0
    assert len(clock.sleeps) == 2
    assert 0 <= clock.sleeps[0] <= 1.0 and 0 <= clock.sleeps[1] <= 2.0  # full jitter, doubling
    path, headers, body = hook.requests[-1]
    assert path == "/alerts" and headers["Authorization"] == "Bearer hook-secret"
    assert body == {"rule": "error_share", "status": "firing"}


def test_webhook_gives_up_and_logs_no_secret(hook: _Hook, caplog: pytest.LogCaptureFixture) -> None:
    hook.then(400)
    clock = ManualClock()
    n = notifier(hook.origin + "/T000/B000/url-secret", clock, max_attempts=4)
    try:
        with caplog.at_level(logging.WARNING):
            assert not n.send({"rule": "cost_spike", "status": "firing"})
    finally:
        n.close()
    assert len(hook.requests) == 1 and n.failed == 1 and clock.sleeps == []  # 400 is final
    assert "HTTP 400" in caplog.text and "url-secret" not in caplog.text


def test_webhook_down_is_retried_then_dropped() -> None:
    clock = ManualClock()
    n = notifier("http://127.0.0.1:9/hook", clock, max_attempts=3, timeout_s=1.0)
    try:
        assert not n.send({"rule": "latency_p95", "status": "firing"})
    finally:
        n.close()
    assert len(clock.sleeps) == 2 and n.failed == 1


def test_tick_logs_and_posts_firing_then_resolved(
    traces: SqliteTraceStore,
    plain: TrafficProfile,
    hook: _Hook,
    caplog: pytest.LogCaptureFixture,
) -> None:
    write(traces, replace(plain, error=0.3), reference=plain)
    settings = MonitorSettings(resolve_after=1)
    clock = ManualClock(start=NOW)
    m = Monitor(
        settings,
        TraceWindows(traces.path),
        notifier=notifier(hook.origin + "/hook", ManualClock()),
        clock=clock,
    )
    try:
        with caplog.at_level(logging.WARNING, logger="ragkeel.monitor"):
            assert "error_share" in {a.rule for a in m.tick()}
        assert "error_share" in {a.rule for a in m.firing()}
        gauge = dict(alert_readings(m))
        assert gauge[("error_share", "critical")] == 1.0 and len(gauge) == len(RULES)
        assert gauge[("cost_spike", "warning")] == 0.0
        record = next(r for r in caplog.records if "error_share" in r.getMessage())
        assert record.levelno == logging.WARNING and record.alert["status"] == "firing"  # type: ignore[attr-defined]
        body = next(b for _, _, b in hook.requests if b["rule"] == "error_share")
        assert body["status"] == "firing" and body["severity"] == "critical"
        assert body["value"] > body["threshold"] == 0.05
        assert body["window"]["seconds"] == HOUR
        clock.advance(2 * DAY)  # the faulty hour is long gone: nothing in the window
        changes = m.tick()
        assert ("error_share", "resolved") in {(a.rule, a.status) for a in changes}
        statuses = [b["status"] for _, _, b in hook.requests if b["rule"] == "error_share"]
        assert statuses == ["firing", "resolved"]
        assert m.firing() == []
        assert set(dict(alert_readings(m)).values()) == {0.0}
    finally:
        m.close()


def test_the_background_thread_evaluates_until_stopped(
    traces: SqliteTraceStore, plain: TrafficProfile
) -> None:
    write(traces, replace(plain, error=0.3), reference=plain)
    m = Monitor(MonitorSettings(), TraceWindows(traces.path), clock=ManualClock(start=NOW))
    m.start()
    try:
        for _ in range(200):  # the first evaluation runs at once; wait at most 10 s for it
            if m.last() is not None:
                break
            time.sleep(0.05)
        assert "error_share" in {a.rule for a in m.firing()}
    finally:
        m.stop()
    assert not any(t.name == "ragkeel-monitor" for t in threading.enumerate())
    m.close()


def test_monitor_settings_mask_the_webhook_and_refuse_a_bad_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAGKEEL_MONITOR__WEBHOOK__URL", "https://hooks.example/T0/url-secret")
    monkeypatch.setenv("RAGKEEL_MONITOR__WEBHOOK__HEADERS", '{"Authorization": "Bearer h-secret"}')
    shown = json.dumps(load_settings().masked()["monitor"])
    assert "url-secret" not in shown and "h-secret" not in shown
    monkeypatch.setenv("RAGKEEL_MONITOR__WEBHOOK__URL", "ftp://hooks.example/x")
    with pytest.raises(ConfigError, match=r"monitor\.webhook\.url"):
        load_settings()


def test_windows_leave_out_evaluation_runs_and_keep_the_newest(
    traces: SqliteTraceStore, plain: TrafficProfile
) -> None:
    rng = random.Random(2)
    for t in traffic(plain, 50, start=NOW - HOUR, end=NOW, rng=rng):
        traces.record(t)
        traces.record(replace(t, id=new_trace_id(), route="eval.run", outcome="error"))
    assert TraceWindows(traces.path).read(NOW - HOUR, NOW).requests == 50
    capped = TraceWindows(traces.path, max_samples=20).read(NOW - HOUR, NOW)
    assert capped.requests == 20
    newest = TraceWindows(traces.path).read(NOW - HOUR * 20 / 50, NOW)
    assert capped.outcomes == newest.outcomes

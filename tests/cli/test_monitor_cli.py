"""``ragkeel monitor check``: evaluates the rules once over the home's trace store; exit 1 when
any fires, a table or ``--json``."""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragkeel.cli.main import app
from ragkeel.observability.trace_store import SqliteTraceStore
from ragkeel.testing.traffic import TrafficProfile, traffic

HOUR = 3_600.0
STEADY = TrafficProfile(top_scores=tuple(0.3 + i / 500 for i in range(100)), gate_threshold=0.3)


def _fill(home: Path, current: TrafficProfile) -> None:
    now, rng = time.time(), random.Random(5)
    store = SqliteTraceStore(home / "traces.db")
    before = traffic(STEADY, 1_000, start=now - 20 * HOUR, end=now - 2 * HOUR, rng=rng)
    for t in before + traffic(current, 200, start=now - HOUR + 60, end=now - 60, rng=rng):
        store.record(t)
    store.close()


def test_check_on_steady_traffic_exits_0(_isolated_home: Path) -> None:
    _fill(_isolated_home, STEADY)
    result = CliRunner().invoke(app, ["monitor", "check"])
    assert result.exit_code == 0, result.output
    assert "nothing firing" in result.output and "score_drift" in result.output


def test_check_exits_1_when_a_rule_fires(_isolated_home: Path) -> None:
    _fill(_isolated_home, replace(STEADY, error=0.25))
    result = CliRunner().invoke(app, ["monitor", "check"])
    assert result.exit_code == 1, result.output
    assert "FIRING" in result.output and "error_share" in result.output.split("firing:")[-1]


def test_check_json(_isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEL_MONITOR__RULES__P95_LATENCY_MS", "500")
    _fill(_isolated_home, STEADY)
    result = CliRunner().invoke(app, ["monitor", "check", "--json"])
    assert result.exit_code == 1, result.output
    body = json.loads(result.output)
    rules = {r["rule"]: r for r in body["rules"]}
    assert rules["latency_p95"]["status"] == "breach" and rules["latency_p95"]["threshold"] == 500
    assert body["window"]["requests"] == 200 and body["window"]["seconds"] == HOUR
    assert rules["score_drift"]["status"] == "ok" and "psi" in rules["score_drift"]["details"]

"""``ragkeel costs``: the cost ledger per model, tenant or day (run in process through a small
typer app, as ``cli/main.py`` registers it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ragkeel.cli.costs import costs_command
from ragkeel.errors import ConfigError
from ragkeel.observability.cost_ledger import SqliteCostLedger

app = typer.Typer(pretty_exceptions_enable=False)
app.command("costs")(costs_command)
app.command("noop")(lambda: None)  # two commands: typer keeps "costs" as a subcommand
DAY1 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
DAY2 = DAY1 + 86_400


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)  # no ./ragkeel.yaml from elsewhere
    monkeypatch.setenv("RAGKEEL_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _fill(home: Path) -> None:
    ledger = SqliteCostLedger(home / "costs.db")
    rows = [
        ("acme", "gpt-4o", 1000, 100, 0.0035, DAY1),
        ("acme", "gpt-4o-mini", 2000, 300, 0.00048, DAY1),
        ("zeta", "gpt-4o", 500, 50, 0.00175, DAY2),
    ]
    for tenant, model, prompt, completion, cost, ts in rows:
        ledger.record(
            tenant=tenant,
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=cost,
            outcome="ok",
            ts=ts,
        )
    ledger.close()


def test_costs_by_model_as_a_table(home: Path) -> None:
    _fill(home)
    result = CliRunner().invoke(app, ["costs"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    gpt4o = next(line for line in lines if line.strip().startswith("gpt-4o "))
    assert gpt4o.split() == ["gpt-4o", "2", "1,500", "150", "0.005250"]
    total = next(line for line in lines if line.strip().startswith("total"))
    assert total.split() == ["total", "3", "3,500", "450", "0.005730"]


def test_costs_by_tenant_and_day_as_json(home: Path) -> None:
    _fill(home)
    runner = CliRunner()
    tenants = json.loads(runner.invoke(app, ["costs", "--by", "tenant", "--json"]).output)
    assert {t["key"]: t["calls"] for t in tenants} == {"acme": 2, "zeta": 1}
    assert {t["key"]: t["cost"] for t in tenants} == pytest.approx(
        {"acme": 0.00398, "zeta": 0.00175}
    )
    days = json.loads(runner.invoke(app, ["costs", "--by", "day", "--json"]).output)
    assert [d["key"] for d in days] == ["2026-01-02", "2026-01-01"]
    since = runner.invoke(app, ["costs", "--by", "tenant", "--since", "2026-01-02", "--json"])
    assert [t["key"] for t in json.loads(since.output)] == ["zeta"]


def test_no_ledger_yet_says_so_and_creates_nothing(home: Path) -> None:
    result = CliRunner().invoke(app, ["costs"])
    assert result.exit_code == 0 and "no model calls recorded" in result.output
    assert json.loads(CliRunner().invoke(app, ["costs", "--json"]).output) == []
    assert not (home / "costs.db").exists()


def test_bad_arguments(home: Path) -> None:
    runner = CliRunner()
    bad_day = runner.invoke(app, ["costs", "--since", "yesterday"])
    assert isinstance(bad_day.exception, ConfigError) and "YYYY-MM-DD" in str(bad_day.exception)
    assert runner.invoke(app, ["costs", "--by", "week"]).exit_code == 2  # typer's usage error

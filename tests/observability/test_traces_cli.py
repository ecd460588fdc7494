"""The trace of ``ragkeel ask`` (a real subprocess) and the ``traces``/``trace`` commands (run
in process through a small typer app, as ``cli/main.py`` registers them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ragkeel.cli.traces import trace_command, traces_command
from ragkeel.container import Container
from ragkeel.errors import TraceNotFoundError
from ragkeel.observability.trace_store import NullTraceStore, SqliteTraceStore
from ragkeel.settings import load_settings

from .conftest import ON_TOPIC, full_trace, write_corpus

app = typer.Typer(pretty_exceptions_enable=False)
app.command("traces")(traces_command)
app.command("trace")(trace_command)


def ragkeel(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RAGKEEL_EMBEDDING__PROVIDER": "hashing",
        "RAGKEEL_GENERATION__PROVIDER": "none",
        "RAGKEEL_GENERATION__GATE_THRESHOLD": "0.1",
    }
    return subprocess.run(
        [sys.executable, "-m", "ragkeel", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ask_records_a_trace_and_reports_its_id(
    tmp_path: Path, _isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGKEEL_EMBEDDING__PROVIDER", "hashing")
    container = Container(load_settings())  # ingest in process: one subprocess less
    # acme's documents: --tenant names whose documents ask searches, and whose account pays
    report = container.pipeline.ingest([str(write_corpus(tmp_path / "docs"))], "kb", tenant="acme")
    container.close()
    assert report.exit_code == 0
    done = ragkeel(
        "ask", ON_TOPIC, "--json", "--mode", "extractive", "--tenant", "acme", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    store = SqliteTraceStore(_isolated_home / "traces.db")
    trace = store.get(answer["trace_id"])
    assert trace is not None
    assert (trace.route, trace.question, trace.outcome, trace.mode) == (
        "cli.ask",
        ON_TOPIC,
        "answered",
        "extractive",
    )
    assert [c.chunk_id for c in trace.retrieved] == [h["chunk_id"] for h in answer["hits"]]
    assert trace.output == answer["text"] and trace.gate is not None and trace.gate.passed
    assert trace.tenant == "acme" and trace.gateway is not None
    assert trace.gateway["served_by"] == "extractive"
    failed = ragkeel("ask", "   ", "--json", cwd=tmp_path)
    assert failed.returncode == 1 and "error [QUERY_INVALID]" in failed.stderr
    (error,) = store.recent(outcome="error")
    assert error.error_code == "QUERY_INVALID" and f"trace {error.id}" in failed.stderr
    store.close()


def test_traces_and_trace_commands(_isolated_home: Path) -> None:
    store = SqliteTraceStore(_isolated_home / "traces.db")
    ok = store.record(full_trace(id="0" * 15 + "1" + "a" * 16))
    bad = store.record(full_trace("error", id="0" * 15 + "2" + "a" * 16, error_code="STORE_ERROR"))
    store.close()
    runner = CliRunner()
    listed = runner.invoke(app, ["traces", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [t["id"] for t in json.loads(listed.output)] == [bad, ok]
    errors = runner.invoke(app, ["traces", "--outcome", "error", "--last", "5", "--json"])
    assert [t["id"] for t in json.loads(errors.output)] == [bad]
    table = runner.invoke(app, ["traces"], env={"COLUMNS": "250"})
    assert table.exit_code == 0 and ok[:16] in table.output and bad[:16] in table.output
    one = runner.invoke(app, ["trace", ok[:16], "--json"])  # a prefix, as the table shows
    assert json.loads(one.output)["id"] == ok
    block = runner.invoke(app, ["trace", ok], env={"COLUMNS": "250"})
    assert block.exit_code == 0, block.output
    for part in ("gate: passed (dense)", "stages (ms): embed 1.2", "prompt: sha256", "[1] API"):
        assert part in block.output
    missing = runner.invoke(app, ["trace", "nope"])
    assert isinstance(missing.exception, TraceNotFoundError)
    assert missing.exception.code == "TRACE_NOT_FOUND"


def test_settings_wire_the_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "t.db"
    monkeypatch.setenv("RAGKEEL_OBSERVABILITY__TRACE_STORE", str(path))
    monkeypatch.setenv("RAGKEEL_OBSERVABILITY__KEEP_PROMPT_TEXT", "false")
    settings = load_settings()
    assert settings.masked()["observability"]["trace_store"] == str(path)
    container = Container(settings)
    trace = full_trace()
    container.traces.record(trace)
    got = container.traces.get(trace.id)
    container.close()
    assert got is not None and got.prompt is not None and got.prompt.text is None
    assert path.exists()
    monkeypatch.setenv("RAGKEEL_OBSERVABILITY__ENABLED", "false")
    assert isinstance(Container(load_settings()).traces, NullTraceStore)

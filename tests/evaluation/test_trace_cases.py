"""Traces become test cases: traces recorded from real answers into a real ``SqliteTraceStore``
(where the settings put it, under the test's private RAGKEEL_HOME), then ``eval add-case``
through ``CliRunner`` on an ``eval`` app that ``cli.eval_cases.register`` fills, as the lead
wires it into ``cli/eval.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from answer_fixtures import OFF_TOPIC, ON_TOPIC, answer_index, ask
from typer.testing import CliRunner

from ragkeel.cli.eval_cases import register
from ragkeel.errors import DatasetError, TraceNotFoundError
from ragkeel.evaluation.datasets.testset import load_testset, write_case
from ragkeel.evaluation.datasets.trace_cases import case_from_trace
from ragkeel.generation.tracing import trace_from_answer
from ragkeel.observability import names
from ragkeel.observability.trace import Trace
from ragkeel.observability.trace_store import SqliteTraceStore
from ragkeel.settings import load_settings

ANSWER = "Rotate every API key every ninety days [1]."


def _record(*traces: Trace) -> list[str]:
    store = SqliteTraceStore(load_settings().trace_store_path)
    try:
        return [store.record(t) for t in traces]
    finally:
        store.close()


@pytest.fixture
def traces(tmp_path: Path) -> dict[str, Trace]:
    """An answered and a refused trace from real answers, recorded in the settings' store."""
    with answer_index(tmp_path / "index") as retriever:
        answered = ask(retriever, ON_TOPIC, ANSWER)
        refused = ask(retriever, OFF_TOPIC, "unused")
    found = {
        "answered": trace_from_answer(answered, route=names.ROUTE_CLI_ASK, keep_prompt_text=True),
        "refused": trace_from_answer(refused, route=names.ROUTE_CLI_ASK, keep_prompt_text=True),
    }
    assert found["answered"].outcome == "answered" and found["answered"].citations
    assert found["refused"].outcome == "cannot_answer"
    _record(*found.values())
    return found


def test_answered_trace_pins_its_behaviour_without_a_reference(traces: dict[str, Trace]) -> None:
    trace = traces["answered"]
    case = case_from_trace(trace)
    assert case.question == ON_TOPIC and case.expect == "answer"
    assert case.id == f"trace-{trace.id[:16]}"
    assert case.relevant_doc_ids == tuple(dict.fromkeys(c.document_id for c in trace.citations))
    assert case.reference_answers == ()  # never the system's own output
    assert case.tags == ("from-trace",)


def test_user_corrections_override_what_the_trace_did(traces: dict[str, Trace]) -> None:
    wrong_answer = case_from_trace(traces["answered"], expect="cannot_answer", tags=["bug-17"])
    assert wrong_answer.expect == "cannot_answer" and wrong_answer.relevant_doc_ids == ()
    assert wrong_answer.tags == ("from-trace", "bug-17")
    wrong_refusal = case_from_trace(traces["refused"], expect="answer", references=["x "])
    assert wrong_refusal.expect == "answer" and wrong_refusal.reference_answers == ("x",)
    assert wrong_refusal.relevant_doc_ids == ()  # a refusal cites nothing
    with pytest.raises(DatasetError, match="no reference answers"):
        case_from_trace(traces["refused"], references=["x"])


def test_error_trace_needs_an_explicit_expect() -> None:
    failed = Trace(route="cli.ask", question="Q?", outcome="error", error_code="STORE_ERROR")
    with pytest.raises(DatasetError, match="--expect"):
        case_from_trace(failed)
    assert case_from_trace(failed, expect="answer").expect == "answer"


def _cli() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)
    eval_app = typer.Typer()
    register(eval_app)
    app.add_typer(eval_app, name="eval")
    return app


def test_add_case_cli_appends_one_loadable_line(traces: dict[str, Trace], tmp_path: Path) -> None:
    runner, app = CliRunner(), _cli()
    answered, refused = traces["answered"], traces["refused"]
    target = tmp_path / "evals" / "regressions.jsonl"
    args = ["eval", "add-case", "--to", str(target)]
    first = runner.invoke(app, [*args, "--from-trace", answered.id[:20], "--tag", "keys"])
    assert first.exit_code == 0, first.output
    assert "expect answer (what the trace did (answered))" in first.output
    second = runner.invoke(
        app,
        [*args, "--from-trace", refused.id, "--expect", "answer", "--reference", "ninety days"],
    )
    assert second.exit_code == 0, second.output
    cases = load_testset(target).cases
    assert [c.id for c in cases] == [f"trace-{answered.id[:16]}", f"trace-{refused.id[:16]}"]
    assert cases[0].tags == ("from-trace", "keys")
    assert cases[1].question == OFF_TOPIC and cases[1].reference_answers == ("ninety days",)
    again = runner.invoke(app, [*args, "--from-trace", answered.id])
    assert isinstance(again.exception, DatasetError) and "already has" in str(again.exception)
    assert len(target.read_text(encoding="utf-8").splitlines()) == 2


def test_add_case_cli_unknown_trace_and_default_file(
    traces: dict[str, Trace], tmp_path: Path
) -> None:
    runner, app = CliRunner(), _cli()
    missing = runner.invoke(app, ["eval", "add-case", "--from-trace", "0" * 32])
    assert isinstance(missing.exception, TraceNotFoundError)
    done = runner.invoke(app, ["eval", "add-case", "--from-trace", traces["refused"].id])
    assert done.exit_code == 0, done.output
    default = tmp_path / "evals" / "cases" / "regressions.jsonl"  # relative to the cwd
    assert load_testset(default).cases[0].expect == "cannot_answer"


def test_write_case_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "set.jsonl"
    trace = Trace(route="cli.ask", question="Q?", outcome="cannot_answer")
    write_case(path, case_from_trace(trace))
    assert load_testset(path).cases[0].tags == ("from-trace",)

"""Traces become test cases: traces recorded from real answers into a real ``SqliteTraceStore``
(where the settings put it, under the test's private RAGKEEL_HOME), then ``eval add-case``
through ``CliRunner`` on an ``eval`` app that ``cli.eval_cases.register`` fills, as the lead
wires it into ``cli/eval.py``.

Negative feedback becomes regression cases too (issue 12, ``--from-feedback``): only traces whose
newest rating is negative, expect ``answer``, no relevant documents from a rejected answer's
citations, tags saying where they came from; a second run adds nothing; a deleted trace is
skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from answer_fixtures import OFF_TOPIC, ON_TOPIC, answer_index, ask
from typer.testing import CliRunner

from ragkeel.cli.eval_cases import register
from ragkeel.errors import DatasetError, TraceNotFoundError
from ragkeel.evaluation.datasets.testset import load_testset, write_case
from ragkeel.evaluation.datasets.trace_cases import case_from_feedback, case_from_trace
from ragkeel.generation.tracing import trace_from_answer
from ragkeel.observability import names
from ragkeel.observability.feedback import Feedback, SqliteFeedbackStore
from ragkeel.observability.trace import Trace
from ragkeel.observability.trace_store import SqliteTraceStore
from ragkeel.settings import load_settings
from ragkeel.types import Citation

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


CITED = Citation(1, "doc-keys", "c1", "keys.md", "API keys", None, "Rotate every key.")


@pytest.fixture
def rated() -> dict[str, Trace]:
    found = {
        "wrong": Trace(
            route="/v1/query",
            question="How often?",
            outcome="answered",
            output="Every year [1].",
            citations=(CITED,),
        ),
        "refused": Trace(route="/v1/query", question="Who owns keys?", outcome="cannot_answer"),
        "good": Trace(route="/v1/query", question="Where?", outcome="answered"),
        "changed": Trace(route="/v1/query", question="When?", outcome="answered"),
    }
    path = load_settings().trace_store_path
    traces, feedback = SqliteTraceStore(path), SqliteFeedbackStore(path)
    for t in found.values():
        traces.record(t)
    feedback.add(Feedback(found["wrong"].id, "down", "default", "wrong interval"))
    feedback.add(Feedback(found["refused"].id, "1", "default"))
    feedback.add(Feedback(found["good"].id, "5", "default"))
    feedback.add(Feedback(found["changed"].id, "2", "default"))
    feedback.add(Feedback(found["changed"].id, "up", "default"))  # the newest rating counts
    feedback.add(Feedback("f" * 32, "down", "default"))  # its trace is gone (retention)
    traces.close()
    feedback.close()
    return found


def test_negative_feedback_becomes_cases_once(rated: dict[str, Trace], tmp_path: Path) -> None:
    target = tmp_path / "evals" / "feedback.jsonl"
    runner, app = CliRunner(), _cli()
    args = ["eval", "add-case", "--from-feedback", "--to", str(target), "--tag", "triage"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "added 2 case(s)" in first.output and "1 no longer in the trace store" in first.output
    cases = {c.id: c for c in load_testset(target).cases}
    wrong, refused = rated["wrong"].id[:16], rated["refused"].id[:16]
    assert set(cases) == {f"feedback-{wrong}", f"feedback-{refused}"}
    case = cases[f"feedback-{wrong}"]
    assert case.question == "How often?" and case.expect == "answer"
    assert case.relevant_doc_ids == () and case.reference_answers == ()
    assert case.tags == ("from-trace", "from-feedback", "rating-down", "triage")
    assert cases[f"feedback-{refused}"].expect == "answer"

    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "added 0 case(s)" in again.output
    assert "2 already there" in again.output
    assert len(target.read_text(encoding="utf-8").splitlines()) == 2


def test_the_options_are_checked(rated: dict[str, Trace]) -> None:
    runner, app = CliRunner(), _cli()
    neither = runner.invoke(app, ["eval", "add-case"])
    both = runner.invoke(app, ["eval", "add-case", "--from-feedback", "--from-trace", "abc"])
    assert neither.exit_code == both.exit_code == 2
    with pytest.raises(DatasetError, match="not a negative rating"):
        case_from_feedback(rated["good"], Feedback(rated["good"].id, "5", "default"))

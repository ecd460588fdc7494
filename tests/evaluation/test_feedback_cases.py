"""Negative feedback becomes regression cases (issue 12): traces and ratings recorded in the
settings' real trace file, then ``eval add-case --from-feedback`` through ``CliRunner``: only
traces whose newest rating is negative, expect ``answer``, no relevant documents from a rejected
answer's citations, tags saying where they came from; a second run adds nothing; a deleted
trace is skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ragkeel.cli.eval_cases import register
from ragkeel.errors import DatasetError
from ragkeel.evaluation.datasets.testset import load_testset
from ragkeel.evaluation.datasets.trace_cases import case_from_feedback
from ragkeel.observability.feedback import Feedback, SqliteFeedbackStore
from ragkeel.observability.trace import Trace
from ragkeel.observability.trace_store import SqliteTraceStore
from ragkeel.settings import load_settings
from ragkeel.types import Citation


def _cli() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)
    eval_app = typer.Typer()
    register(eval_app)
    app.add_typer(eval_app, name="eval")
    return app


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

"""``ragkeel eval add-case --from-trace ID [--expect answer|cannot_answer] [--reference TEXT]...
[--tag T]... [--id ID] [--to evals/cases/regressions.jsonl]``: turn a recorded trace into one
line of a test set (``evaluation/datasets/trace_cases.py``, ``evaluation/datasets/testset.py``).
A case whose id the file already has is refused, so adding the same trace twice does not
duplicate it."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ragkeel.container import Container
from ragkeel.errors import TraceNotFoundError
from ragkeel.evaluation.cases import Expect
from ragkeel.evaluation.datasets.testset import write_case
from ragkeel.evaluation.datasets.trace_cases import case_from_trace, observed_expect

DEFAULT_CASES_FILE = Path("evals/cases/regressions.jsonl")


class ExpectChoice(StrEnum):
    answer = "answer"
    cannot_answer = "cannot_answer"


_EXPECT: dict[ExpectChoice, Expect] = {
    ExpectChoice.answer: "answer",
    ExpectChoice.cannot_answer: "cannot_answer",
}


def add_case_command(
    from_trace: Annotated[
        str, typer.Option("--from-trace", help="a trace id, or a unique prefix of it")
    ],
    expect: Annotated[
        ExpectChoice | None,
        typer.Option("--expect", help="the right behaviour; default: what the trace did"),
    ] = None,
    reference: Annotated[
        list[str] | None, typer.Option("--reference", help="a correct answer (repeatable)")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="repeatable")] = None,
    case_id: Annotated[str | None, typer.Option("--id", help="default: trace-<id prefix>")] = None,
    to: Annotated[Path, typer.Option("--to", help="the test-set JSONL to append to")] = (
        DEFAULT_CASES_FILE
    ),
) -> None:
    """Add a recorded request as a test case (how a production failure becomes a regression
    test)."""
    with Container.load() as container:
        trace = container.traces.get(from_trace)
    if trace is None:
        raise TraceNotFoundError(
            f"no trace with id {from_trace!r}", hint="list recent ids with `ragkeel traces`"
        )
    case = case_from_trace(
        trace,
        expect=_EXPECT[expect] if expect else None,
        case_id=case_id,
        tags=tag or (),
        references=reference or (),
    )
    write_case(to, case)
    why = "as given" if expect else f"what the trace did ({trace.outcome})"
    typer.echo(f"added case {case.id} to {to}: expect {case.expect} ({why})")
    if case.relevant_doc_ids:
        typer.echo(f"relevant documents (from the citations): {', '.join(case.relevant_doc_ids)}")
    if expect is None and observed_expect(trace) == "answer" and not case.reference_answers:
        typer.echo("no reference answer: add one with --reference to score exact match and F1")


def register(app: typer.Typer) -> None:
    """Add ``add-case`` to the ``eval`` sub-app."""
    app.command("add-case")(add_case_command)

"""``ragkeel eval add-case --from-trace ID [--expect answer|cannot_answer] [--reference TEXT]...
[--tag T]... [--id ID] [--to evals/cases/regressions.jsonl]``: turn a recorded trace into one
line of a test set (``evaluation/datasets/trace_cases.py``, ``evaluation/datasets/testset.py``).
A case whose id the file already has is refused, so adding the same trace twice does not
duplicate it.

``ragkeel eval add-case --from-feedback [--since-days N] [--expect ...] [--tag T]... [--to ...]``
(issue 12): every trace whose newest rating is negative (``down``, 1, 2; ``POST /v1/feedback``)
becomes a case ``feedback-<id>`` (``case_from_feedback``). Traces already in the file are
skipped, so running it again (from cron, say) adds only the new ones; a rated trace that
retention has deleted since is skipped and counted."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from ragkeel.container import Container
from ragkeel.errors import TraceNotFoundError
from ragkeel.evaluation.cases import Expect
from ragkeel.evaluation.datasets.testset import load_testset, write_case
from ragkeel.evaluation.datasets.trace_cases import (
    case_from_feedback,
    case_from_trace,
    observed_expect,
)

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
        str | None, typer.Option("--from-trace", help="a trace id, or a unique prefix of it")
    ] = None,
    from_feedback: Annotated[
        bool,
        typer.Option("--from-feedback", help="every trace rated negatively (down, 1, 2)"),
    ] = False,
    since_days: Annotated[
        float | None,
        typer.Option("--since-days", min=0, help="--from-feedback: rated in the last N days"),
    ] = None,
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
    test), or every request users rated negatively (--from-feedback)."""
    if (from_trace is None) == (not from_feedback):
        raise typer.BadParameter("give either --from-trace ID or --from-feedback")
    if from_feedback:
        if reference or case_id:
            raise typer.BadParameter("--reference and --id go with --from-trace only")
        _add_from_feedback(to, _EXPECT[expect] if expect else None, tag or [], since_days)
        return
    assert from_trace is not None
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


def _add_from_feedback(
    to: Path, expect: Expect | None, tags: list[str], since_days: float | None
) -> None:
    since = time.time() - since_days * 86_400 if since_days is not None else None
    with Container.load() as container:
        store = container.feedback
        rated = store.negative(since=since) if store is not None else []
        traces = {f.trace_id: container.traces.get(f.trace_id) for f in rated}
    have = {c.id for c in load_testset(to).cases} if to.exists() else set()
    added = skipped = gone = 0
    for feedback in reversed(rated):  # oldest first: the file reads in the order of rating
        trace = traces[feedback.trace_id]
        if trace is None:
            gone += 1
            continue
        case = case_from_feedback(trace, feedback, expect=expect, tags=tags)
        if case.id in have:
            skipped += 1
            continue
        write_case(to, case)
        have.add(case.id)
        added += 1
    typer.echo(
        f"added {added} case(s) to {to} from {len(rated)} negatively rated trace(s); "
        f"{skipped} already there, {gone} no longer in the trace store"
    )
    if added:
        typer.echo("no reference answers: add them to the cases to score exact match and F1")


def register(app: typer.Typer) -> None:
    """Add ``add-case`` to the ``eval`` sub-app."""
    app.command("add-case")(add_case_command)

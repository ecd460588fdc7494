"""``ragkeel eval compare A.json B.json [--json]`` and
``ragkeel eval gate --baseline B.json --current C.json [--config gate.yaml] [--update-baseline]``.

Exit status of ``gate``: 0 the current run passes (metrics that apply to no case of either run
are listed as not applicable), 1 a regression (every reason is printed), 2 invalid input
(unreadable results or config, runs over different data, or runs that do not compute the metrics
compared: ``METRIC_MISMATCH``). ``compare`` exits
0, or 2 on invalid input. Invalid input is handled here rather than by ``cli.main`` so that "the
gate could not judge" (2) is never confused with "the gate found a regression" (1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn, cast

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ragkeel.errors import RagkeelError
from ragkeel.evaluation.reports.compare import OVERALL, compare
from ragkeel.evaluation.reports.compare_table import render_table
from ragkeel.evaluation.reports.gate import (
    GateResult,
    evaluate_gate,
    load_gate_config,
    slim_results,
)
from ragkeel.evaluation.reports.results import EvalResults as ResultsDocument
from ragkeel.evaluation.reports.results import write_results
from ragkeel.evaluation.reports.results_view import EvalResults, load_results

EXIT_REGRESSION = 1
EXIT_INVALID = 2
DEFAULT_GATE_CONFIG = Path("evals/gate.yaml")
_STATUS_STYLE = {"pass": "green", "fail": "bold red", "note": "yellow", "n/a": "dim"}


def register(app: typer.Typer) -> None:
    """Add ``compare`` and ``gate`` to the ``eval`` sub-app."""
    app.command("compare")(compare_command)
    app.command("gate")(gate_command)


def compare_command(
    a: Annotated[Path, typer.Argument(help="results.json of run A (the baseline)")],
    b: Annotated[Path, typer.Argument(help="results.json of run B (the candidate)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
) -> None:
    """Compare two evaluation runs: per-metric deltas (B - A) with a 95% bootstrap interval and a
    paired permutation p-value, operations side by side, and the cases that changed most."""
    try:
        comparison = compare(load_results(a), load_results(b))
    except RagkeelError as exc:
        _invalid(exc)
    if as_json:
        typer.echo(comparison.to_json(), nl=False)
    else:
        Console().print(render_table(comparison))


def gate_command(
    baseline: Annotated[Path, typer.Option("--baseline", help="the committed baseline run")],
    current: Annotated[Path, typer.Option("--current", help="the run to judge")],
    config: Annotated[
        Path, typer.Option("--config", help="gate config (tolerances, alpha, budgets)")
    ] = DEFAULT_GATE_CONFIG,
    update_baseline: Annotated[
        bool,
        typer.Option(
            "--update-baseline",
            help="accept the current run: overwrite the baseline with it (on purpose)",
        ),
    ] = False,
) -> None:
    """Fail (exit 1) when a metric drops beyond its tolerance and the drop is significant, or a
    budget (p95 latency, cost per query, degraded or error share) is exceeded."""
    console = Console()
    try:
        gate_config = load_gate_config(config)
        cur = load_results(current)
        if update_baseline:
            _update_baseline(console, baseline, cur, current)
            return
        result = evaluate_gate(load_results(baseline), cur, gate_config)
    except RagkeelError as exc:
        _invalid(exc)
    _print_result(console, result)
    if not result.passed:
        raise typer.Exit(EXIT_REGRESSION)


def _update_baseline(console: Console, baseline: Path, cur: EvalResults, current: Path) -> None:
    write_results(baseline, cast(ResultsDocument, slim_results(cur.raw)))
    console.print(
        f"baseline updated on purpose: {baseline} now holds {current} "
        "(retrieved texts and citation snippets cut short); the gate was not applied. "
        "Commit it together with the change that explains it.",
        markup=False,
        soft_wrap=True,
    )


def _print_result(console: Console, result: GateResult) -> None:
    table = Table(title="Regression gate", title_justify="left")
    for column in ("status", "check", "scope", "detail"):
        table.add_column(column, overflow="fold")
    for check in result.checks:
        status = Text(check.status, style=_STATUS_STYLE[check.status])
        table.add_row(status, Text(check.name), Text(check.scope), Text(check.detail))
    console.print(table)
    for note in result.notes:
        console.print(
            f"note: {note.name} [{note.scope}]: {note.detail}",
            style="yellow",
            markup=False,
            soft_wrap=True,
        )
    if result.not_applicable:
        names = dict.fromkeys(c.name for c in result.not_applicable if c.scope == OVERALL)
        if names:
            console.print(
                f"not applicable (no case of either run has a value): {', '.join(names)}",
                style="dim",
                markup=False,
                soft_wrap=True,
            )
    if result.passed:
        console.print("gate passed", style="bold green")
        return
    console.print(f"gate FAILED: {len(result.failures)} regression(s)", style="bold red")
    for failure in result.failures:
        line = f"  - {failure.metric} [{failure.scope}]: {failure.reason}"
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _invalid(exc: RagkeelError) -> NoReturn:
    typer.echo(f"error [{exc.code}]: {exc}", err=True)
    raise typer.Exit(EXIT_INVALID)

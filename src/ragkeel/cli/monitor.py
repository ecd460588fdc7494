"""``ragkeel monitor check [--json]``: evaluate the alert rules once over the trace store, for
cron users (``observability/monitor/``; ``ragkeel serve`` evaluates them every
``monitor.interval_s`` in the background). Prints each rule's status, value, threshold and the
samples it rests on; exits 1 when any rule breaches, 0 otherwise (a rule without enough data
does not breach).

Register with ``app.add_typer(monitor.app, name="monitor")``.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ragkeel.container import Container
from ragkeel.observability.monitor import Evaluation

app = typer.Typer(help="Alert rules over the trace store (latency, errors, cost, drift).")


@app.command("check")
def check_command(
    as_json: Annotated[bool, typer.Option("--json", help="print the evaluation as JSON")] = False,
) -> None:
    """Evaluate every alert rule once; exit 1 when any fires."""
    with Container.load() as container:
        evaluation = container.monitor.evaluate()
    if as_json:
        typer.echo(json.dumps(evaluation.to_dict(), indent=2))
    else:
        _print_table(evaluation)
    if evaluation.breached:
        raise typer.Exit(1)


def _print_table(e: Evaluation) -> None:
    console = Console()
    console.print(
        f"window: the last {e.current.end - e.current.start:,.0f} s, "
        f"{e.current.requests} requests; reference: the "
        f"{e.reference.end - e.reference.start:,.0f} s before, {e.reference.requests} requests"
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for name in ("rule", "status", "value", "threshold", "samples", "why"):
        table.add_column(
            name, justify="right" if name in ("value", "threshold", "samples") else "left"
        )
    for r in e.results:
        status = "FIRING" if r.breached else r.status
        table.add_row(
            r.rule,
            f"[bold red]{status}[/]" if r.breached else status,
            _number(r.value),
            _number(r.threshold),
            str(r.samples),
            r.summary,
        )
    console.print(table)
    fired = [r.rule for r in e.breached]
    console.print(f"{len(fired)} firing: {', '.join(fired)}" if fired else "nothing firing")


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.4g}"

"""``ragkeel eval run CONFIG.yaml [--out DIR] [--limit N]``: run an evaluation config with a
progress bar, write ``results.json`` and ``report.html``, print the headline metrics.

Exit status 0 when the run completed (failed cases are rows with an ``error``, counted in the
summary; ``eval gate`` decides whether the numbers are good enough), 1/2 when the run itself
could not start (``ConfigError`` → 2, e.g. a bad config key).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ragkeel.container import Container
from ragkeel.evaluation.reports.html import REPORT_FILE, require_plots, write_report
from ragkeel.evaluation.reports.results import EvalResults
from ragkeel.evaluation.run.config import load_eval_config
from ragkeel.evaluation.run.harness import RESULTS_FILE, run_eval

RESULTS_DIR = "results"  # default output: <home of the run>/results/


def register(app: typer.Typer) -> None:
    """Add ``run`` to the ``eval`` command group."""
    app.command("run")(eval_run_command)


def eval_run_command(
    config_path: Annotated[
        Path, typer.Argument(metavar="CONFIG.yaml", help="evaluation config", exists=True)
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="output directory (default: <home>/results)"),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="at most N cases per data set")
    ] = None,
) -> None:
    """Ingest the config's data sets, ask every case, write results.json and report.html."""
    require_plots()  # the report's plots (the eval extra): missing, say so before any case runs
    config = load_eval_config(config_path)
    assert config.home is not None  # load_eval_config fills the default
    out_dir = out or config.home / RESULTS_DIR
    console = Console()
    with _ProgressBar(console) as bar:
        results = run_eval(config, out_dir=out_dir, build=Container, progress=bar, limit=limit)
    report_path = out_dir / REPORT_FILE
    write_report(report_path, results)
    _print_summary(console, results)
    console.print(f"results: {out_dir / RESULTS_FILE}\nreport:  {report_path}")


class _ProgressBar:
    """A rich progress bar fed by the harness's ``(phase, done, total)`` callback."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, phase: str, done: int, total: int) -> None:
        task = self.tasks.get(phase)
        if task is None:
            task = self.tasks[phase] = self.progress.add_task(phase, total=total)
        self.progress.update(task, completed=done, total=total)


def _print_summary(console: Console, results: EvalResults) -> None:
    aggregates = results["aggregates"]
    columns = ["overall", *aggregates["by_dataset"]]
    table = Table(title=f"eval {results['name']}: mean (n)")
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    tables = [aggregates["overall"], *aggregates["by_dataset"].values()]
    for metric in aggregates["overall"]:
        cells = [
            f"{t[metric]['mean']:.3f} ({t[metric]['n']})" if metric in t else "–" for t in tables
        ]
        table.add_row(metric, *cells)
    console.print(table)
    ops = aggregates["ops"]
    total = ops["latency_ms"].get("total")
    latency = f"p50 {total['p50']:.0f} ms, p95 {total['p95']:.0f} ms" if total else "–"
    console.print(
        f"{ops['n']} cases · latency {latency} · errors {ops['error_share']:.1%} · "
        f"degraded {ops['degraded_share']:.1%} · cost ${ops['cost_total']:.4f}"
    )
    run = results.get("run")
    if run and run["cut"]:
        console.print(
            f"[yellow]cut by limits.{run['cut']}: {run['ran_cases']} of "
            f"{run['planned_cases']} cases ran[/yellow]"
        )

"""``ragkeel eval …``: retrieval on BEIR, full runs from a config (``eval run``), test cases
(``eval add-case``), comparisons and the regression gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ragkeel.cli import eval_gate, eval_run
from ragkeel.cli.choices import ModeChoice, as_mode
from ragkeel.cli.eval_cases import register as register_case_commands
from ragkeel.container import Container
from ragkeel.evaluation.datasets.beir import load_beir
from ragkeel.evaluation.run.retrieval import evaluate_beir
from ragkeel.retrieval.hybrid import MODES, Mode

app = typer.Typer(
    help="Evaluate retrieval and answer quality; manage test cases.", no_args_is_help=True
)
register_case_commands(app)
eval_run.register(app)
eval_gate.register(app)


@app.command("retrieval")
def retrieval(
    beir: Annotated[Path, typer.Option("--beir", help="BEIR data set directory")],
    split: Annotated[str, typer.Option("--split")] = "test",
    mode: Annotated[
        list[ModeChoice] | None,
        typer.Option("--mode", help="repeatable; default: all three"),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100)] = 10,
    out: Annotated[Path | None, typer.Option("--out", help="report directory")] = None,
) -> None:
    """Index the BEIR corpus (reused when unchanged), run the split's queries, print metrics,
    write a TREC run file, a JSON report and a results file (as `eval run` writes, for `eval
    compare` and `eval gate`) per mode."""
    with Container.load() as container:
        dataset = load_beir(beir, split)
        console = Console()
        out_dir = out or container.home / "eval"
        modes: list[Mode] = [as_mode(m) for m in mode] if mode else list(MODES)
        for i, m in enumerate(modes):
            with console.status(f"{m}: indexing and running {len(dataset.qrels)} queries"):
                outcome = evaluate_beir(
                    dataset,
                    container.pipeline,
                    container.retriever,
                    m,
                    out_dir,
                    k=k,
                    settings_snapshot=container.settings_snapshot(),
                    reindex=(i == 0),
                )
            if outcome.ingest is not None:
                ing = outcome.ingest
                console.print(
                    f"index: {ing.documents_written} documents written, "
                    f"{ing.documents_unchanged} unchanged, {ing.embedded_texts} embedded "
                    f"in {ing.elapsed_seconds:.1f} s"
                )
            console.print(outcome.report.render_table())
            console.print(
                f"latency without query embedding: p50 {outcome.latency_no_embed_p50_ms:.1f} ms,"
                f" p95 {outcome.latency_no_embed_p95_ms:.1f} ms"
            )
            console.print(
                f"run: {outcome.run_path}\nreport: {outcome.report_path}\n"
                f"results: {outcome.results_path}\n"
            )

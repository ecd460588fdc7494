"""``ragkeel`` command line. Errors print ``error [CODE]: message`` and exit non-zero.

``ragkeel --version`` prints ``ragkeel <version>`` (``ragkeel.__version__``, the one source the
package metadata is built from too). Shell completion is typer's (issue 15): ``ragkeel
--install-completion`` adds it to the current shell's start-up file, ``ragkeel
--show-completion`` prints the script (bash, zsh, fish, PowerShell) to install by hand. The
program name is ``ragkeel`` however the CLI is started (``python -m ragkeel`` too), so the
script always completes the ``ragkeel`` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

import ragkeel
from ragkeel.cli import (
    ask,
    collections,
    config,
    costs,
    db,
    eval,
    ingest,
    jobs,
    keys,
    model_server,
    models,
    monitor,
    search,
    serve,
    traces,
    worker,
)
from ragkeel.errors import ConfigError, RagkeelError

app = typer.Typer(
    name="ragkeel",
    help="ragkeel: ingest documents, search them, evaluate retrieval. Offline by default.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


PROG_NAME = "ragkeel"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG_NAME} {ragkeel.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    config_file: Annotated[
        Path | None,
        typer.Option("--config", help="YAML settings file (default ./ragkeel.yaml)"),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    if config_file is not None:
        os.environ["RAGKEEL_CONFIG"] = str(config_file)


app.command("ingest")(ingest.ingest_command)
app.command("search")(search.search_command)
app.command("ask")(ask.ask_command)
app.command("traces")(traces.traces_command)
app.command("trace")(traces.trace_command)
app.command("serve")(serve.serve_command)
app.command("costs")(costs.costs_command)
app.command("model-server")(model_server.model_server_command)  # issue 13: one shared model
app.add_typer(config.app, name="config")
app.add_typer(eval.app, name="eval")
app.add_typer(collections.app, name="collections")
app.add_typer(db.app, name="db")  # store schema migrations (issue 13)
app.add_typer(models.app, name="models")
app.add_typer(keys.app, name="keys")
app.add_typer(monitor.app, name="monitor")  # alert rules (issue 12)
app.command("worker")(worker.worker_command)  # the ingestion job queue (issue 13)
app.add_typer(jobs.app, name="jobs")


def run() -> None:
    try:
        app(prog_name=PROG_NAME)
    except RagkeelError as exc:
        typer.echo(f"error [{exc.code}]: {exc}", err=True)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)

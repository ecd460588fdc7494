"""``ragkeel collections list|drop``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ragkeel.container import Container

app = typer.Typer(help="List or drop collections.", no_args_is_help=True)


@app.command("list")
def list_collections(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Collections with their document/chunk counts and embedding model."""
    with Container.load() as container:
        cols = container.store.collections()
    if as_json:
        typer.echo(json.dumps(cols, indent=2))
        return
    table = Table("collection", "documents", "chunks", "embedding model")
    for name, info in cols.items():
        table.add_row(
            name, str(info["documents"]), str(info["chunks"]), str(info["embedding_model"])
        )
    Console().print(table)


@app.command("drop")
def drop(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Delete a collection with all its documents, chunks and vectors."""
    if not yes:
        typer.confirm(f"Drop collection {name!r} and everything in it?", abort=True)
    with Container.load() as container:
        removed = container.store.drop_collection(name)
    typer.echo(f"dropped {name}: {removed} documents")

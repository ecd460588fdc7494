"""``ragkeel config show``: the effective settings, secrets masked."""

from __future__ import annotations

import json
from typing import Annotated

import typer
import yaml

from ragkeel.settings import load_settings

app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)


@app.command("show")
def show(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of YAML")] = False,
) -> None:
    """Print the effective settings (file + RAGKEEL_* env + defaults), secrets masked."""
    data = load_settings().masked()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False).rstrip())

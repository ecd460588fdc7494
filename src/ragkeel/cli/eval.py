"""``ragkeel eval retrieval --beir DIR``: placeholder wired in the next commit."""

from __future__ import annotations

import typer

app = typer.Typer(help="Evaluate retrieval quality.", no_args_is_help=True)

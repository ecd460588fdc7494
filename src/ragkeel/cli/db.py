"""``ragkeel db upgrade``: apply the store's pending schema migrations (issue 13).

The PostgreSQL store's schema is versioned (``storage/postgres/schema.py``); a store opened
with ``storage.postgres.migrate_on_start: false`` refuses an older schema until this runs.
Safe to run from several hosts at once (the migrations take an advisory lock) and again (a
schema already current is left alone).
"""

from __future__ import annotations

import typer

from ragkeel.container import Container

app = typer.Typer(help="Database schema of the store.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply the pending schema migrations of the configured store."""
    with Container.load() as container:
        backend, version, applied = container.upgrade_store()
    for step in applied:
        typer.echo(f"applied {step}")
    typer.echo(f"{backend} store at schema version {version}")

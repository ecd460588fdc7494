"""``ragkeel keys create|list|revoke``: the API keys ``ragkeel serve`` accepts when ``api.auth``
is required (``identity/keys.py``: stored as salted hashes in ``$RAGKEEL_HOME/keys.db``).

``create`` prints the key once, on stdout (the only line there, for ``KEY=$(ragkeel keys create
...)``); what it is, and that it will not be shown again, goes to stderr. ``list`` never shows a
secret. A revoked key is refused from the next request on, in every running server.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ragkeel.container import Container
from ragkeel.identity.keys import ApiKey
from ragkeel.identity.scopes import Scope

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


class ScopeChoice(StrEnum):
    query = "query"
    ingest = "ingest"
    admin = "admin"


_SCOPES: dict[ScopeChoice, Scope] = {
    ScopeChoice.query: "query",
    ScopeChoice.ingest: "ingest",
    ScopeChoice.admin: "admin",
}


@app.command("create")
def create(
    tenant: Annotated[str, typer.Option("--tenant", help="whose data the key reaches")],
    scope: Annotated[
        ScopeChoice,
        typer.Option("--scope", help="query: search and ask; ingest: + upload; admin: + delete"),
    ],
    expires: Annotated[
        float | None, typer.Option("--expires", help="days until the key expires (default never)")
    ] = None,
    principal: Annotated[
        list[str] | None,
        typer.Option("--principal", help="an ACL principal (user or group) the key holds; repeat"),
    ] = None,
    trusted_proxy: Annotated[
        bool,
        typer.Option(
            "--trusted-proxy", help="may name the end user's tenant and principals in headers"
        ),
    ] = False,
) -> None:
    """Create a key and print it (once: only its hash is kept)."""
    with Container.load() as container:
        key, token = container.keys.create(
            tenant,
            _SCOPES[scope],
            expires_in_days=expires,
            principals=principal or (),
            trusted_proxy=trusted_proxy,
        )
    until = f", expires {key.to_dict(key.created_at)['expires']}" if key.expires_at else ""
    typer.echo(
        f"created key {key.id} (tenant {key.tenant}, scope {key.scope}{until}); "
        "copy it now, it is not shown again:",
        err=True,
    )
    typer.echo(token)


@app.command("list")
def list_keys(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every key (never its secret): id, tenant, scope, principals, dates, status."""
    with Container.load() as container:
        if not container.keys.path.exists():  # do not create the file to say "none"
            keys: list[ApiKey] = []
        else:
            keys = container.keys.all()
        now = container.keys.clock.now()
    rows = [k.to_dict(now) for k in keys]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    columns = ("id", "tenant", "scope", "principals", "created", "expires", "last_used", "status")
    table = Table()
    for column in columns:  # the id whole (revoke takes it); the rest folds on a narrow terminal
        table.add_column(column, no_wrap=column == "id", overflow="fold")
    for row in rows:
        row = {**row, "principals": ",".join(row["principals"])}
        table.add_row(*(str(row[c] or "-") for c in columns))
    Console().print(table)


@app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key's id (ragkeel keys list)")]) -> None:
    """Revoke a key: refused from the next request on."""
    with Container.load() as container:
        key = container.keys.revoke(key_id)
    typer.echo(f"revoked key {key.id} (tenant {key.tenant}, scope {key.scope})")

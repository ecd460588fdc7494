"""``ragkeel costs [--by model|tenant|day] [--since YYYY-MM-DD] [--json]``: what the model calls
cost, from the cost ledger (``observability/cost_ledger.py``, ``$RAGKEEL_HOME/costs.db``).

Register with ``app.command("costs")(costs.costs_command)``.
"""

from __future__ import annotations

import json
from datetime import date
from enum import StrEnum
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from ragkeel.container import Container
from ragkeel.errors import ConfigError
from ragkeel.observability.cost_ledger import CostTotal, GroupBy


class ByChoice(StrEnum):
    model = "model"
    tenant = "tenant"
    day = "day"


_GROUPS: dict[ByChoice, GroupBy] = {
    ByChoice.model: "model",
    ByChoice.tenant: "tenant",
    ByChoice.day: "day",
}


def costs_command(
    by: Annotated[ByChoice, typer.Option("--by", help="group the calls by")] = ByChoice.model,
    since: Annotated[
        str | None, typer.Option("--since", help="only calls on or after this UTC day")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What the model calls cost: calls, tokens and USD per model, tenant or day."""
    start = _day(since) if since else None
    with Container.load() as container:
        if not container.cost_ledger_path.exists():  # nothing recorded: create no empty ledger
            totals: list[CostTotal] = []
        else:
            totals = container.ledger.totals(_GROUPS[by], since=start)
    if as_json:
        typer.echo(json.dumps([t.to_dict() for t in totals], indent=2))
    else:
        _print_table(totals, by, start)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"--since must be a day as YYYY-MM-DD, got {text!r}", hint="e.g. --since 2026-01-31"
        ) from exc


def _print_table(totals: list[CostTotal], by: ByChoice, since: date | None) -> None:
    console = Console()
    if not totals:
        console.print("no model calls recorded" + (f" since {since}" if since else ""))
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column(by.value, no_wrap=True, overflow="ellipsis", max_width=40)
    for name in ("calls", "prompt tokens", "completion tokens", "USD"):
        table.add_column(name, justify="right", no_wrap=True)
    for t in totals:
        table.add_row(
            t.key, f"{t.calls:,}", f"{t.prompt_tokens:,}", f"{t.completion_tokens:,}", _usd(t.cost)
        )
    table.add_section()
    table.add_row(
        "total",
        f"{sum(t.calls for t in totals):,}",
        f"{sum(t.prompt_tokens for t in totals):,}",
        f"{sum(t.completion_tokens for t in totals):,}",
        _usd(sum(t.cost for t in totals)),
    )
    console.print(table)


def _usd(value: float) -> str:
    return f"{value:,.4f}" if value >= 0.01 or value == 0 else f"{value:.6f}"

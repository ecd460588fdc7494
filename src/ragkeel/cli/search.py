"""``ragkeel search "query" [--k 10] [--mode bm25|dense|hybrid] [--collection] [--tenant NAME]
[--principal P]... [--json]``; ``--tenant``/``--principal``: whose documents (``cli/scope.py``)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ragkeel.cli.choices import ModeChoice, as_mode
from ragkeel.cli.scope import PrincipalOption, TenantOption, operator_scope
from ragkeel.container import Container
from ragkeel.storage.filters import Filter
from ragkeel.types import SearchResult


def search_command(
    query: Annotated[str, typer.Argument(help="what to search for")],
    k: Annotated[int, typer.Option("--k", min=1, max=1000)] = 10,
    mode: Annotated[ModeChoice | None, typer.Option("--mode")] = None,
    collection: Annotated[str | None, typer.Option("--collection", "-c")] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="only these source paths")
    ] = None,
    where: Annotated[
        list[str] | None, typer.Option("--where", help="metadata filter key=value (repeatable)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    tenant: TenantOption = None,
    principal: PrincipalOption = None,
) -> None:
    """Search the index with BM25, dense vectors, or both fused."""
    scope = operator_scope(tenant, principal)
    with Container.load() as container:
        flt = Filter(
            collection=collection,
            sources=tuple(source or ()),
            metadata=dict(_pair(w) for w in where or ()),
        )
        result = container.retriever.search(
            query,
            k,
            mode=as_mode(mode) if mode else container.search_mode,
            flt=None if flt.is_empty else flt,
            scope=scope,
        )
    if as_json:
        typer.echo(json.dumps(_to_json(result), indent=2))
    else:
        _print(result)


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise typer.BadParameter(f"--where expects key=value, got {text!r}")
    return key.strip(), value.strip()


def _to_json(result: SearchResult) -> dict[str, object]:
    data = asdict(result)
    for hit in data["hits"]:
        hit["chunk"]["heading_path"] = list(hit["chunk"]["heading_path"])
    return data


def _print(result: SearchResult) -> None:
    console = Console()
    table = Table(
        "#",
        "score",
        "bm25",
        "dense",
        "source",
        "text",
        title=f"{result.mode}: {result.query}",
        title_justify="left",
        show_lines=True,
    )
    for i, hit in enumerate(result.hits, 1):
        c = hit.chunk
        where = " > ".join(c.context_path())
        page = f" p.{c.page}" if c.page else ""
        snippet = " ".join(c.text.split())[:240]
        table.add_row(
            str(i),
            f"{hit.score:.3f}",
            f"{hit.keyword_score:.2f}#{hit.keyword_rank}" if hit.keyword_rank else "-",
            f"{hit.dense_score:.3f}#{hit.dense_rank}" if hit.dense_rank else "-",
            f"{c.source.rsplit('/', 1)[-1]}{page}\n{where}",
            snippet,
        )
    console.print(table)
    conf = result.confidence
    console.print(
        f"confidence: top={conf.top_score:.3f} margin={conf.margin:.3f} "
        f"agreement={conf.agreement} · {result.timings_ms.get('total_ms', 0):.1f} ms"
    )

"""``ragkeel collections list|drop|copy|reembed|reindex``.

``copy`` moves collections between stores without re-embedding (``storage/copy.py``; the
stores are named ``sqlite:PATH`` or ``postgres:URL``, ``storage/locations.py``); ``reembed``
moves a collection to the configured embedding model, building the new index version alongside
the live one and switching when it is complete (``ingestion/reembed.py``). Both print a
progress line per batch on stderr (issue 13). ``reindex --language`` rebuilds a collection's
keyword index in another language (issue 15: stemmer and stop words; vectors are kept), in one
transaction: searches see the old index until it commits.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ragkeel.cli.scope import TenantOption
from ragkeel.container import Container
from ragkeel.errors import CollectionNotFoundError
from ragkeel.ingestion.reembed import ReembedProgress, reembed_collection
from ragkeel.languages import check_language
from ragkeel.storage.copy import CopyProgress, copy_collections
from ragkeel.storage.locations import open_location, parse_location
from ragkeel.storage.tenancy import check_name
from ragkeel.types import DEFAULT_TENANT, AccessScope

app = typer.Typer(help="List, drop, copy, re-embed or re-index collections.", no_args_is_help=True)


@app.command("list")
def list_collections(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Collections with their document/chunk counts, embedding model and keyword language."""
    with Container.load() as container:
        cols = container.store.collections()
    if as_json:
        typer.echo(json.dumps(cols, indent=2))
        return
    table = Table("collection", "documents", "chunks", "embedding model", "language")
    for name, info in cols.items():
        table.add_row(
            name,
            str(info["documents"]),
            str(info["chunks"]),
            str(info["embedding_model"]),
            str(info["language"]),
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


@app.command("copy")
def copy(
    source: Annotated[
        str, typer.Option("--from", help="the store to read: sqlite:PATH or postgres:URL")
    ],
    target: Annotated[
        str, typer.Option("--to", help="the store to write: sqlite:PATH or postgres:URL")
    ],
    collection: Annotated[
        str | None, typer.Option("--collection", help="one collection (default: all of them)")
    ] = None,
    tenant: TenantOption = None,
    all_tenants: Annotated[
        bool, typer.Option("--all-tenants", help="every tenant's collections")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=10_000)] = 256,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress lines")] = False,
) -> None:
    """Copy collections between stores with their documents, chunks, vectors, ACLs and
    metadata, without re-embedding. Running it again copies only what changed."""
    if all_tenants and tenant is not None:
        raise typer.BadParameter("give --tenant or --all-tenants, not both")
    src, dst = parse_location(source), parse_location(target)
    from_store = open_location(src, must_exist=True)
    try:
        to_store = open_location(dst, must_exist=False)
        try:
            tenants = (
                from_store.tenants()
                if all_tenants
                else [check_name("tenant", tenant or DEFAULT_TENANT)]
            )
            done = copy_collections(
                from_store,
                to_store,
                tenants=tenants,
                collection=collection,
                batch_size=batch_size,
                progress=None if quiet else _print_copy,
            )
        finally:
            to_store.close()
    finally:
        from_store.close()
    written = sum(d.written for d in done)
    chunks = sum(d.chunks for d in done)
    unchanged = sum(d.unchanged for d in done)
    typer.echo(
        f"copied {len(done)} collections from {src} to {dst}: {written} documents "
        f"({chunks} chunks) written, {unchanged} unchanged"
    )


def _print_copy(progress: CopyProgress) -> None:
    typer.echo(progress.line(), err=True)


@app.command("reembed")
def reembed(
    name: str,
    tenant: TenantOption = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=4096)] = 64,
    force: Annotated[
        bool, typer.Option("--force", help="rebuild even if the model is already the active one")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress lines")] = False,
) -> None:
    """Re-embed a collection with the configured embedding model: the new index version is
    built alongside the live one (searches keep using it) and switched to when complete."""
    scope = AccessScope(check_name("tenant", tenant or DEFAULT_TENANT), all_principals=True)
    with Container.load() as container:
        done = reembed_collection(
            container.store,
            container.embedder,
            name,
            scope=scope,
            batch_size=batch_size,
            force=force,
            progress=None if quiet else _print_reembed,
        )
    if done.current:
        typer.echo(f"{name} already uses {done.embedding_model} (version {done.version})")
        return
    typer.echo(
        f"switched {name} to {done.embedding_model} (version {done.version}): "
        f"{done.embedded} chunks embedded in {done.elapsed_s:.1f} s"
    )


def _print_reembed(progress: ReembedProgress) -> None:
    typer.echo(progress.line(), err=True)


@app.command("reindex")
def reindex(
    name: str,
    language: Annotated[
        str, typer.Option("--language", help="the keyword analyzer's language (german, ...)")
    ],
    tenant: TenantOption = None,
) -> None:
    """Rebuild a collection's keyword index in another language (stemmer and stop words):
    every chunk re-analysed in one transaction; vectors and documents are kept."""
    scope = AccessScope(check_name("tenant", tenant or DEFAULT_TENANT), all_principals=True)
    wanted = check_language(language)
    with Container.load() as container:
        store = container.store
        if store.collection_language(name, scope=scope) is None:
            raise CollectionNotFoundError(
                f"no collection {name!r} in tenant {scope.tenant!r}",
                hint="`ragkeel collections list` shows them",
            )
        chunks = store.reindex_keywords(name, wanted, scope=scope)
    typer.echo(f"re-indexed {name} in {wanted}: {chunks} chunks")

"""``ragkeel ingest PATH... [--collection NAME] [--language LANG] [--tenant NAME]
[--principal P]... [--prune] [--follow-symlinks] [--json] [--queue]``.

``--language`` (issue 15) is the keyword analyzer's language of the collection (``english``,
``german``, ... PyStemmer's): a new collection is created in it, an existing one in another
language is refused (``LANGUAGE_MISMATCH``, exit 1) before any file is read, and an unknown
one is ``LANGUAGE_UNSUPPORTED`` with the supported ones listed. Without it, an existing
collection keeps its language and a new one gets ``retrieval.language``.

``--queue`` (issue 13) enqueues one ingestion job instead of ingesting here (``ingestion.queue``
must name an engine; ``ragkeel worker`` runs it): the paths are made absolute for the workers,
which must see the same files; it prints the job id (``--json``: ``{"job": id}``) and exits 0;
``ragkeel jobs show ID`` has the per-file report once a worker has run it.

``--tenant`` writes into that tenant's collection (default: the default tenant);
``--principal`` (repeatable, or comma-separated) gives every document written that ACL (none:
public within the tenant). Ingesting the same unchanged file with other principals replaces the
documents' ACL without re-embedding them; a bad name is ``NAME_INVALID`` (exit 1) before any
file is read.

Symlinks that lead out of the given directories are skipped (and listed) unless
``--follow-symlinks``; a path named on the command line is used as given, even a symlink
(``ingestion/sources.py``). Exit status: 0 every file succeeded (skipped files are not
failures), 3 some files failed, 1 nothing could be ingested.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ragkeel.cli.scope import TenantOption, principals_of
from ragkeel.container import Container
from ragkeel.ingestion.report import FileResult, IngestReport
from ragkeel.jobs.model import JobSpec, spec_paths
from ragkeel.languages import check_language
from ragkeel.storage.tenancy import check_name
from ragkeel.types import DEFAULT_TENANT, AccessScope


def ingest_command(
    paths: Annotated[list[str], typer.Argument(help="files, directories (recursive) or globs")],
    collection: Annotated[str, typer.Option("--collection", "-c")] = "default",
    language: Annotated[
        str | None,
        typer.Option(
            "--language",
            help="keyword analyzer language of the collection (default: the collection's, "
            "or retrieval.language for a new one)",
        ),
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="remove documents whose source is gone")
    ] = False,
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks",
            help="follow symlinks that lead outside the given directories (skipped otherwise)",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable report")] = False,
    tenant: TenantOption = None,
    principal: Annotated[
        list[str] | None,
        typer.Option(
            "--principal",
            help="ACL principal of the documents written (repeatable or comma-separated; "
            "none: public within the tenant)",
        ),
    ] = None,
    queue: Annotated[
        bool, typer.Option("--queue", help="enqueue one job for `ragkeel worker` instead")
    ] = False,
) -> None:
    """Parse, chunk, embed and index documents (idempotent and incremental)."""
    console = Console(stderr=True)
    show_progress = not as_json and console.is_terminal
    owner = _Owner(tenant or DEFAULT_TENANT, principals_of(principal), language)
    if queue:
        _enqueue(paths, collection, prune, follow_symlinks, as_json, owner)
        return
    with Container.load() as container:
        if show_progress:
            report = _with_progress(
                container, paths, collection, prune, follow_symlinks, console, owner
            )
        else:
            report = container.pipeline.ingest(
                paths,
                collection,
                prune=prune,
                follow_symlinks=follow_symlinks,
                tenant=owner.tenant,
                principals=owner.principals,
                language=owner.language,
            )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_summary(report, Console())
    raise typer.Exit(report.exit_code)


def _enqueue(
    paths: list[str],
    collection: str,
    prune: bool,
    follow_symlinks: bool,
    as_json: bool,
    owner: _Owner,
) -> None:
    spec = JobSpec(
        tenant=check_name("tenant", owner.tenant),
        collection=check_name("collection", collection),
        paths=spec_paths(os.path.abspath(p) for p in paths),
        principals=tuple(sorted(owner.principals)),
        prune=prune,
        follow_symlinks=follow_symlinks,
        language=check_language(owner.language) if owner.language is not None else None,
    )
    with Container.load() as container:
        if spec.language is not None:  # refused now, not when a worker runs it
            scope = AccessScope(spec.tenant, all_principals=True)
            container.pipeline.language_of(spec.collection, scope, spec.language)
        job_id = container.job_queue.submit(spec)
    typer.echo(json.dumps({"job": job_id}) if as_json else job_id)


@dataclass(frozen=True)
class _Owner:
    """Whose the documents are, who may see them, and the collection's language (if given)."""

    tenant: str
    principals: frozenset[str]
    language: str | None = None


def _with_progress(
    container: Container,
    paths: list[str],
    collection: str,
    prune: bool,
    follow_symlinks: bool,
    console: Console,
    owner: _Owner,
) -> IngestReport:
    progress = Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files · {task.fields[chunks]} chunks · {task.fields[rate]:.1f} chunks/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task: TaskID | None = None

    def on_event(kind: str, result: FileResult | None, report: IngestReport) -> None:
        nonlocal task
        if kind == "start":
            total = sum(1 for f in report.files if f.status != "skipped")
            task = progress.add_task("ingest", total=None, chunks=0, rate=0.0)
            progress.update(task, total=max(total, 0) or None)
        elif task is not None and kind in ("file", "batch"):
            elapsed = progress.tasks[0].elapsed or 1e-9
            progress.update(
                task,
                advance=1 if kind == "file" else 0,
                chunks=report.chunks_written,
                rate=report.chunks_written / elapsed,
            )

    with progress:
        return container.pipeline.ingest(
            paths,
            collection,
            prune=prune,
            progress=on_event,
            follow_symlinks=follow_symlinks,
            tenant=owner.tenant,
            principals=owner.principals,
            language=owner.language,
        )


def _print_summary(report: IngestReport, console: Console) -> None:
    problems = [f for f in report.files if f.status in ("failed", "partial")]
    skipped = [f for f in report.files if f.status == "skipped"]
    unsupported = [f for f in skipped if f.error_code == "UNSUPPORTED_TYPE"]
    if unsupported:
        names = ", ".join(f.path.rsplit("/", 1)[-1] for f in unsupported[:5])
        more = f" and {len(unsupported) - 5} more" if len(unsupported) > 5 else ""
        console.print(f"skipped {len(unsupported)} file(s) of unsupported type: {names}{more}")
    for f in skipped:
        if f.error_code != "UNSUPPORTED_TYPE":
            console.print(
                f"skipped [{f.error_code}] {f.error_message}", markup=False, soft_wrap=True
            )
    if problems:
        table = Table("file", "status", "code", "message", title="problems", title_justify="left")
        for f in problems:
            table.add_row(f.path, f.status, f.error_code or "", f.error_message or "")
            for rec in f.record_errors[:5]:
                table.add_row(f"  {rec['record']}", "record", rec["code"], rec["message"])
            if len(f.record_errors) > 5:
                table.add_row("", "", "", f"... {len(f.record_errors) - 5} more record errors")
        console.print(table)
    summary = Table(
        "collection",
        "files ok",
        "files failed",
        "docs written",
        "unchanged",
        "deleted",
        "chunks",
        "embedded",
        "seconds",
        title="ingest summary",
        title_justify="left",
    )
    summary.add_row(
        report.collection,
        str(len(report.succeeded)),
        str(len(report.failed)),
        str(report.documents_written),
        str(report.documents_unchanged),
        str(report.documents_deleted),
        str(report.chunks_written),
        str(report.embedded_texts),
        f"{report.elapsed_seconds:.1f}",
    )
    console.print(summary)
    if report.exit_code:
        print(f"{len(report.failed)} file(s) failed; see the table above", file=sys.stderr)

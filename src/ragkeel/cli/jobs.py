"""``ragkeel jobs list [--failed] [--tenant NAME] [--json]``, ``ragkeel jobs show ID``,
``ragkeel jobs retry ID``: the ingestion job queue seen by the operator (issue 13, ``jobs/``).

Every tenant's jobs unless ``--tenant``. ``--failed`` lists the dead ones (transient failures
that outlived ``ingestion.jobs.max_attempts``); ``retry`` puts one back in the queue. An unknown
id is ``JOB_NOT_FOUND`` (exit 1).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ragkeel.cli.scope import TenantOption
from ragkeel.container import Container
from ragkeel.errors import NotFoundError
from ragkeel.jobs.model import JobView

app = typer.Typer(help="ingestion jobs: list, show, retry (ingestion.queue)", no_args_is_help=True)


@app.command("list")
def list_command(
    failed: Annotated[bool, typer.Option("--failed", help="only dead jobs")] = False,
    tenant: TenantOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The newest jobs first, with their state and attempts."""
    with Container.load() as c:
        jobs = c.job_queue.list(tenant=tenant, failed=failed, limit=limit)
    if as_json:
        typer.echo(json.dumps([job_dict(j) for j in jobs], indent=2))
        return
    table = Table("state", "tenant", "collection", "files", "runs", "age", "error")
    table.add_column("id", no_wrap=True)
    for j in jobs:
        table.add_row(
            j.state,
            j.spec.tenant,
            j.spec.collection,
            str(len(j.spec.paths)),
            str(j.attempts),
            f"{time.time() - j.created_at:.0f}s",
            j.error_code or "",
            j.id,
        )
    Console().print(table)


@app.command("show")
def show_command(job_id: str, tenant: TenantOption = None) -> None:
    """One job as JSON: its state, files and the report of its last run."""
    with Container.load() as c:
        job = c.job_queue.get(job_id, tenant=tenant)
    if job is None:
        raise _not_found(job_id)
    typer.echo(json.dumps(job_dict(job), indent=2))


@app.command("retry")
def retry_command(job_id: str, tenant: TenantOption = None) -> None:
    """Put a dead job back in the queue (a queued or finished one is left as it is)."""
    with Container.load() as c:
        job = c.job_queue.retry(job_id, tenant=tenant)
    if job is None:
        raise _not_found(job_id)
    typer.echo(f"{job.id}: {job.state}")


def job_dict(job: JobView) -> dict[str, Any]:
    data = asdict(job)
    data["spec"] = {**asdict(job.spec), "names": dict(job.spec.names)}
    return data


def _not_found(job_id: str) -> NotFoundError:
    return NotFoundError(
        f"no job {job_id!r}", code="JOB_NOT_FOUND", hint="ragkeel jobs list shows the ids"
    )

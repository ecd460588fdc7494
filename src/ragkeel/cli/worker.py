"""``ragkeel worker [--concurrency N] [--drain]``: run ingestion jobs (issue 13, ``jobs/``).

The worker opens one container and runs each job through its ingestion pipeline
(``UploadRunner``): parsing and embedding happen here, not in the API process. Uploaded files
the job's documents do not come from are deleted once the job has succeeded (a dead job keeps
them, so that ``ragkeel jobs retry`` can run it again). SIGTERM or Ctrl-C: no new job; the
running ones finish within ``ingestion.jobs.shutdown_grace_s`` or are released at the next file
and queued again. ``--drain`` processes what is ready and exits (scripts, benchmarks).
Exit status 2 when no queue is configured (``ingestion.queue``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from ragkeel.api.uploads import UploadArea
from ragkeel.container import Container
from ragkeel.ingestion.pipeline import ProgressFn
from ragkeel.ingestion.report import FileResult, IngestReport
from ragkeel.jobs.model import JobReleased, JobSpec, ShouldStop


class UploadRunner:
    """``jobs.model.Runner`` over a container's pipeline and upload area."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.area = UploadArea(container.uploads_dir)

    def run(self, spec: JobSpec, should_stop: ShouldStop) -> IngestReport:
        def released(kind: str, _result: FileResult | None, _report: IngestReport) -> None:
            if kind in ("file", "batch") and should_stop():
                raise JobReleased

        progress: ProgressFn = released
        return self.container.pipeline.ingest(
            list(spec.paths),
            spec.collection,
            prune=spec.prune,
            follow_symlinks=spec.follow_symlinks,
            tenant=spec.tenant,
            principals=spec.principals,
            language=spec.language,
            progress=progress,
        )

    def finish(self, spec: JobSpec) -> None:
        if spec.uploaded:
            paths = [Path(p) for p in spec.paths]
            self.area.discard_unused(self.container.store, spec.tenant, spec.collection, paths)


def worker_command(
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", min=1, max=64, help="jobs run at once (ingestion.jobs.concurrency)"
        ),
    ] = None,
    drain: Annotated[
        bool, typer.Option("--drain", help="run the jobs that are ready, then exit")
    ] = False,
) -> None:
    """Run ingestion jobs from the queue until SIGTERM (parsing and embedding happen here)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with Container.load() as container:
        queue = container.job_queue
        typer.echo(f"worker {'draining' if drain else 'waiting for'} ingestion jobs", err=True)
        queue.run_worker(UploadRunner(container), concurrency=concurrency, wait=not drain)

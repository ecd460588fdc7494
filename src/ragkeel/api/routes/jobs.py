"""``GET /v1/jobs/{id}``: an ingestion job's state and per-file results (issue 13, ``jobs/``).

Tenant-scoped like documents: another tenant's job id is 404 ``JOB_NOT_FOUND``, as one that
does not exist. Files are named as uploaded and documents by their public ids
(``uploads.files_out``): no server path. With no queue configured every id is 404.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from starlette.concurrency import run_in_threadpool

from ragkeel.api.auth import caller_scope, require
from ragkeel.api.job_schemas import JobOut
from ragkeel.api.problems import client_message
from ragkeel.api.state import ApiState, get_state
from ragkeel.api.uploads import files_out
from ragkeel.errors import NotFoundError
from ragkeel.ingestion.report import FileResult
from ragkeel.jobs.model import JobView
from ragkeel.types import AccessScope

router = APIRouter(tags=["documents"])
JOB_ID_PATTERN = r"^job_[0-9a-f]{1,64}$"  # what jobs/procrastinate_queue.py hands out: job_<hex>


@router.get("/v1/jobs/{job_id}", response_model=JobOut, dependencies=[Depends(require("ingest"))])
async def get_job(
    job_id: Annotated[
        str,
        PathParam(
            pattern=JOB_ID_PATTERN, description="the id POST /v1/documents answered (job_...)"
        ),
    ],
    state: Annotated[ApiState, Depends(get_state)],
    scope: Annotated[AccessScope, Depends(caller_scope)],
) -> JobOut:
    """The job's state, attempts and the per-file report of its last run."""
    return await run_in_threadpool(_job, state, scope, job_id)


def _job(state: ApiState, scope: AccessScope, job_id: str) -> JobOut:
    c = state.container
    job = c.job_queue.get(job_id, tenant=scope.tenant) if c.queue_enabled else None
    if job is None:
        raise NotFoundError(
            f"no job {job_id!r}", code="JOB_NOT_FOUND", hint="POST /v1/documents answers the id"
        )
    return job_out(state, scope, job)


def job_out(state: ApiState, scope: AccessScope, job: JobView) -> JobOut:
    spec, view = job.spec, state.public_view(scope)
    names = dict(spec.names)
    out = JobOut(
        id=job.id,
        state=job.state,
        collection=spec.collection,
        files=[names.get(p, Path(p).name) for p in spec.paths],
        attempts=job.attempts,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error_code=job.error_code,
        error_message=(
            view.scrub(client_message(job.error_code or "", job.error_message))
            if job.error_message
            else None
        ),
    )
    if job.report is not None:
        results = [_file_result(f) for f in job.report.get("files", [])]
        store = state.container.store
        out.report = files_out(store, spec.collection, spec.tenant, results, names, view)
        out.documents_written = int(job.report.get("documents_written", 0))
        out.documents_unchanged = int(job.report.get("documents_unchanged", 0))
        out.chunks_written = int(job.report.get("chunks_written", 0))
    return out


def _file_result(data: dict[str, object]) -> FileResult:
    known = set(FileResult.__slots__) - {"error"}
    return FileResult(**{k: v for k, v in data.items() if k in known})  # type: ignore[arg-type]

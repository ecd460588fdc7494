"""Bodies of the ingestion job routes (issue 13): ``POST /v1/documents`` with the queue on
(``JobAcceptedOut``, 202) and ``GET /v1/jobs/{id}`` (``JobOut``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ragkeel.api.schemas import FileReportOut


class JobAcceptedOut(BaseModel):
    job_id: str = Field(description="the job's id (job_...): GET /v1/jobs/{job_id}")
    state: str = Field(description="queued")
    status_url: str = Field(description="where the job's state and report are read")
    collection: str
    files: list[str] = Field(description="the files as uploaded")


class JobOut(BaseModel):
    id: str
    state: str = Field(description="queued, running, retrying, succeeded, dead or cancelled")
    collection: str
    files: list[str] = Field(description="the files as uploaded")
    attempts: int = Field(description="runs started so far (a retry or a crash adds one)")
    created_at: float = Field(description="UNIX time")
    started_at: float | None = None
    finished_at: float | None = None
    error_code: str | None = Field(default=None, description="why the last run failed, if it did")
    error_message: str | None = None
    report: list[FileReportOut] | None = Field(
        default=None,
        description="per-file results of the last run (bad files with their stable codes); "
        "null before a run has ended",
    )
    documents_written: int = 0
    documents_unchanged: int = 0
    chunks_written: int = 0

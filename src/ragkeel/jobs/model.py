"""What an ingestion job is, what a caller sees of it, and the queue protocol the edges use.

A job is one ingest run: ``paths`` (server paths: files the API kept in the upload area, or
what ``ragkeel ingest --queue`` was given) into ``tenant``'s ``collection`` with the ACL
``principals``. Its public id (``job_<hex>``) is not guessable; every read takes the caller's
tenant and answers ``None`` for another tenant's job, as for one that does not exist.

States (``JobView.state``), from the engine's own record of the job:

=========  =====================================================================================
queued     waiting for a worker
running    a worker has it (a worker killed mid-run: back to ``retrying`` once its heartbeat
           is older than ``ingestion.jobs.stalled_after_s``)
retrying   a run failed on something transient (``transient_failures``) or was released at
           shutdown; it runs again after its backoff
succeeded  done: every file has its outcome in the report, bad files with their stable codes
dead       the transient failures outlived ``ingestion.jobs.max_attempts``; ``jobs list
           --failed`` lists it, ``jobs retry ID`` runs it again
cancelled  cancelled in the engine
=========  =====================================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ragkeel.errors import EmbeddingError, RagkeelError, StorageError
from ragkeel.ingestion.report import IngestReport

JobState = Literal["queued", "running", "retrying", "succeeded", "dead", "cancelled"]
STATES: tuple[JobState, ...] = ("queued", "running", "retrying", "succeeded", "dead", "cancelled")
# what a file's failure must be for the job to be retried: the embedder or the store, not the file
TRANSIENT: tuple[type[RagkeelError], ...] = (EmbeddingError, StorageError)

ShouldStop = Callable[[], bool]  # the worker is shutting down: release the job at the next file


class JobReleased(Exception):
    """The runner stopped between files because the worker is shutting down; the job is
    retried (what was written stays: the content hashes skip it on the next run)."""


class TransientJobError(Exception):
    """A run ended with failures worth retrying (``transient_failures``); the message lists
    their codes. The report of the run is kept with the job."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One ingest run to do. ``names`` maps a kept upload's path to the name it was uploaded
    under (the report shows that, never the path); ``uploaded``: the paths live in the upload
    area and the ones no document comes from are deleted after the run."""

    tenant: str
    collection: str
    paths: tuple[str, ...]
    principals: tuple[str, ...] = ()
    names: Mapping[str, str] = field(default_factory=dict)
    uploaded: bool = False
    prune: bool = False
    follow_symlinks: bool = False
    language: str | None = None  # the collection's keyword language, if the caller named one


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as its owner sees it: ``report`` is the last run's ``IngestReport.to_dict()``
    (None before a run ended); ``error_code``/``error_message``: why the last run failed."""

    id: str
    state: JobState
    spec: JobSpec
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    report: Mapping[str, Any] | None
    error_code: str | None
    error_message: str | None


class Runner(Protocol):
    """Does a job's work in a worker (composed by ``cli/worker.py``): ``run`` ingests, checking
    ``should_stop`` between files (then raises ``JobReleased``); ``finish`` tidies up once the
    job has succeeded (the upload area's files no document came from)."""

    def run(self, spec: JobSpec, should_stop: ShouldStop) -> IngestReport: ...

    def finish(self, spec: JobSpec) -> None: ...


class JobQueue(Protocol):
    """What the edges use; ``procrastinate_queue.ProcrastinateQueue`` implements it. ``tenant``
    None reads every tenant's jobs (the operator's CLI)."""

    def submit(self, spec: JobSpec) -> str: ...

    def get(self, job_id: str, *, tenant: str | None) -> JobView | None: ...

    def list(
        self, *, tenant: str | None, failed: bool = False, limit: int = 100
    ) -> list[JobView]: ...

    def retry(self, job_id: str, *, tenant: str | None) -> JobView | None: ...

    def pending_paths(self) -> set[str]: ...

    def run_worker(
        self, runner: Runner, *, concurrency: int | None = None, wait: bool = True
    ) -> None: ...

    def close(self) -> None: ...


def transient_failures(report: IngestReport) -> list[str]:
    """The codes of the files that failed on the embedder or the store (worth a retry); a
    file's own failure (a parse error, an empty or too large file) is final."""
    return sorted(
        {
            f.error_code or "ERROR"
            for f in report.files
            if f.error is not None and issubclass(f.error, TRANSIENT)
        }
    )


def spec_paths(paths: Iterable[str]) -> tuple[str, ...]:
    """The paths of a job as strings, in order, once each."""
    return tuple(dict.fromkeys(str(p) for p in paths))

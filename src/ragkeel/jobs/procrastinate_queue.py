"""The ingestion job queue on procrastinate (PostgreSQL): ``ingestion.queue: procrastinate``.

Imported only when the queue is on (``Container.job_queue``): psycopg and procrastinate are the
``scale`` extra. The queue database is ``ingestion.queue_url`` (default: the PostgreSQL store's
URL when that backend is on); the document store may be anything, the default SQLite file too
(the workers then write to it in WAL mode under its busy timeout, one transaction per document).

Tables. procrastinate's own (``procrastinate_jobs``, ``procrastinate_workers``...: the schema of
the installed version, applied once under an advisory lock when missing) decide when and where
a job runs; ``ragkeel_ingest_jobs`` holds what ragkeel needs besides: the public id, whose the
job is, what to ingest and the report of its last run. A job's state is read from
procrastinate's status and attempts (``model.py`` lists the states).

Retries (``_Backoff``, ``ingestion.jobs``). A run that ends with files failed on the embedder or
the store (``model.transient_failures``), or that raised, is retried after
``retry_base_s * 2**attempts`` seconds (at most ``retry_max_s``), until ``max_attempts`` runs:
then procrastinate marks it ``failed``, shown as ``dead``, and ``retry`` puts it back in the
queue. A run whose files failed on their own (bad files: their stable codes are in the report)
succeeds: retrying cannot change a bad file. A job record that is gone is not retried.

Crash safety. Each worker sends a heartbeat every ``heartbeat_s``; every worker also looks every
``heartbeat_s`` for jobs in ``doing`` whose worker's heartbeat is older than
``stalled_after_s`` (or whose worker row was pruned) — procrastinate's
``JobManager.get_stalled_jobs`` — and puts them back with ``retry_job``: a worker killed with
``kill -9`` mid-document loses nothing, and the re-run writes nothing twice (a document is one
store transaction; unchanged documents are skipped by their content hash).

SIGTERM (procrastinate's signal handling): the worker takes no new job and lets the running
ones finish for ``shutdown_grace_s``; then it asks them to stop, the runner stops at the next
file (``JobReleased``) and the job goes back to the queue at once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import procrastinate
import psycopg
from procrastinate import exceptions as pexc
from procrastinate.jobs import Job
from procrastinate.schema import SchemaManager
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ragkeel.errors import QueueError
from ragkeel.jobs.model import (
    JobReleased,
    JobSpec,
    JobState,
    JobView,
    Runner,
    TransientJobError,
    transient_failures,
)
from ragkeel.settings import JobQueueSettings

log = logging.getLogger("ragkeel.jobs")
TASK = "ragkeel.ingest"
_SCHEMA_LOCK = 7_265_746_113  # pg_advisory_lock key: one process applies the schemas at a time
_RECORDS = """
CREATE TABLE IF NOT EXISTS ragkeel_ingest_jobs (
    id text PRIMARY KEY,
    queue_job_id bigint,
    tenant text NOT NULL,
    collection text NOT NULL,
    principals jsonb NOT NULL,
    paths jsonb NOT NULL,
    names jsonb NOT NULL,
    uploaded boolean NOT NULL,
    prune boolean NOT NULL,
    follow_symlinks boolean NOT NULL,
    created_at double precision NOT NULL,
    started_at double precision,
    finished_at double precision,
    runs integer NOT NULL DEFAULT 0,
    report jsonb,
    error_code text,
    error_message text
);
CREATE INDEX IF NOT EXISTS ragkeel_ingest_jobs_tenant ON ragkeel_ingest_jobs (tenant, created_at);
CREATE INDEX IF NOT EXISTS ragkeel_ingest_jobs_queue ON ragkeel_ingest_jobs (queue_job_id);
ALTER TABLE ragkeel_ingest_jobs ADD COLUMN IF NOT EXISTS language text;
"""
_SELECT = """
SELECT r.*, j.status, COALESCE(j.attempts, 0) AS attempts
  FROM ragkeel_ingest_jobs r LEFT JOIN procrastinate_jobs j ON j.id = r.queue_job_id
"""
_STATE: dict[str | None, JobState] = {
    "doing": "running",
    "succeeded": "succeeded",
    "failed": "dead",
    "cancelled": "cancelled",
    "aborted": "cancelled",
}


class _Permanent(Exception):
    """A job that cannot run at all (its record is gone): never retried."""


class _Backoff(procrastinate.BaseRetryStrategy):
    """Exponential backoff up to ``max_attempts`` runs; a job that cannot run is not retried,
    a job released at shutdown goes back at once."""

    def __init__(self, settings: JobQueueSettings) -> None:
        self.options = settings

    def get_retry_decision(
        self, *, exception: BaseException, job: Job
    ) -> procrastinate.RetryDecision | None:
        s = self.options
        if isinstance(exception, _Permanent):
            return None
        if isinstance(exception, (JobReleased, pexc.JobAborted)):
            return procrastinate.RetryDecision(retry_in={"seconds": 0})
        if job.attempts + 1 >= s.max_attempts:
            return None  # dead: `jobs list --failed`, `jobs retry ID`
        wait = min(s.retry_base_s * 2**job.attempts, s.retry_max_s)
        return procrastinate.RetryDecision(retry_in={"seconds": wait})


class ProcrastinateQueue:
    """``model.JobQueue`` on procrastinate. Sync calls (the API's thread pool, the CLI) open
    the app on first use; ``run_worker`` runs a worker in this process until SIGTERM."""

    def __init__(self, url: str, settings: JobQueueSettings) -> None:
        self.url = url
        self.options = settings
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=url, min_size=1, max_size=settings.concurrency + 4
            )
        )
        self.app.task(
            name=TASK, queue=settings.queue_name, pass_context=True, retry=_Backoff(settings)
        )(self._run_job)
        self._runner: Runner | None = None
        self._lock = threading.Lock()
        self._opened = False
        self._schema_ready = False

    # -- connections and schema ------------------------------------------------------------
    @contextmanager
    def _db(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            with psycopg.connect(self.url, autocommit=True, row_factory=dict_row) as conn:
                yield conn
        except psycopg.Error as exc:
            raise QueueError(
                f"the job queue database failed: {type(exc).__name__}: {exc}",
                hint="check ingestion.queue_url and that PostgreSQL is running",
            ) from exc

    def ensure_schema(self) -> None:
        """procrastinate's tables (when missing) and ragkeel's job records, once per process."""
        if self._schema_ready:
            return
        with self._db() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
            try:
                row = conn.execute("SELECT to_regclass('procrastinate_jobs') AS t").fetchone()
                if row is None or row["t"] is None:
                    conn.execute(SchemaManager.get_schema())
                conn.execute(_RECORDS)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
        self._schema_ready = True

    def _open_sync(self) -> None:
        with self._lock:
            if self._opened:
                return
            self.ensure_schema()
            try:
                self.app.open()
            except pexc.ProcrastinateException as exc:
                raise QueueError(f"cannot open the job queue: {exc}") from exc
            self._opened = True

    def close(self) -> None:
        with self._lock:
            if self._opened:
                self.app.close()
                self._opened = False

    # -- what the edges call ---------------------------------------------------------------
    def submit(self, spec: JobSpec) -> str:
        """Record the job and defer it; returns its public id."""
        self._open_sync()
        job_id = "job_" + secrets.token_hex(10)
        with self._db() as conn:
            conn.execute(
                "INSERT INTO ragkeel_ingest_jobs(id, tenant, collection, principals, paths, names,"
                " uploaded, prune, follow_symlinks, created_at, language) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    job_id,
                    spec.tenant,
                    spec.collection,
                    Jsonb(list(spec.principals)),
                    Jsonb(list(spec.paths)),
                    Jsonb(dict(spec.names)),
                    spec.uploaded,
                    spec.prune,
                    spec.follow_symlinks,
                    time.time(),
                    spec.language,
                ),
            )
        try:
            queue_job_id = self.app.configure_task(TASK, queue=self.options.queue_name).defer(
                job_id=job_id
            )
        except pexc.ProcrastinateException as exc:
            with self._db() as conn:
                conn.execute("DELETE FROM ragkeel_ingest_jobs WHERE id = %s", (job_id,))
            raise QueueError(f"cannot enqueue the ingest job: {exc}") from exc
        with self._db() as conn:
            conn.execute(
                "UPDATE ragkeel_ingest_jobs SET queue_job_id = %s WHERE id = %s",
                (queue_job_id, job_id),
            )
        return job_id

    def get(self, job_id: str, *, tenant: str | None) -> JobView | None:
        self.ensure_schema()
        with self._db() as conn:
            row = conn.execute(
                _SELECT + " WHERE r.id = %s AND (%s::text IS NULL OR r.tenant = %s)",
                (job_id, tenant, tenant),
            ).fetchone()
        return _view(row) if row else None

    def list(self, *, tenant: str | None, failed: bool = False, limit: int = 100) -> list[JobView]:
        """Newest first; ``failed``: only the dead ones."""
        self.ensure_schema()
        where = " WHERE (%s::text IS NULL OR r.tenant = %s)"
        if failed:
            where += " AND j.status = 'failed'"
        with self._db() as conn:
            rows = conn.execute(
                _SELECT + where + " ORDER BY r.created_at DESC LIMIT %s",
                (tenant, tenant, limit),
            ).fetchall()
        return [_view(r) for r in rows]

    def retry(self, job_id: str, *, tenant: str | None) -> JobView | None:
        """Put a dead (or stuck) job back in the queue now; None when there is no such job.
        A job that is queued, retrying or succeeded is left as it is."""
        view = self.get(job_id, tenant=tenant)
        if view is None:
            return None
        if view.state in ("dead", "running", "cancelled"):
            self._open_sync()
            queue_job_id = self._queue_job_id(job_id)
            try:
                self.app.job_manager.retry_job_by_id(queue_job_id, retry_at=datetime.now(UTC))
            except pexc.ConnectorException as exc:
                raise QueueError(f"cannot retry job {job_id}: {exc}") from exc
        return self.get(job_id, tenant=tenant)

    def pending_paths(self) -> set[str]:
        """The upload-area files of jobs not done yet (queued, running, retrying or dead): the
        API's orphan sweep keeps them."""
        self.ensure_schema()
        with self._db() as conn:
            rows = conn.execute(
                _SELECT + " WHERE r.uploaded AND COALESCE(j.status::text, 'todo') "
                "NOT IN ('succeeded', 'cancelled', 'aborted')"
            ).fetchall()
        return {p for r in rows for p in r["paths"]}

    def _queue_job_id(self, job_id: str) -> int:
        with self._db() as conn:
            row = conn.execute(
                "SELECT queue_job_id FROM ragkeel_ingest_jobs WHERE id = %s", (job_id,)
            ).fetchone()
        if row is None or row["queue_job_id"] is None:
            raise QueueError(f"job {job_id} was never enqueued")
        return int(row["queue_job_id"])

    # -- the worker ------------------------------------------------------------------------
    def run_worker(
        self, runner: Runner, *, concurrency: int | None = None, wait: bool = True
    ) -> None:
        """Run jobs with ``runner`` until SIGTERM/SIGINT (``wait``) or until the queue has no
        job ready (``wait=False``: tests and benchmarks)."""
        self.ensure_schema()
        self._runner = runner
        asyncio.run(self._work(concurrency or self.options.concurrency, wait))

    async def _work(self, concurrency: int, wait: bool) -> None:
        s = self.options
        async with self.app.open_async():
            recovery = asyncio.create_task(self._recover_stalled(), name="recover stalled jobs")
            try:
                await self.app.run_worker_async(
                    queues=[s.queue_name],
                    concurrency=concurrency,
                    wait=wait,
                    update_heartbeat_interval=s.heartbeat_s,
                    fetch_job_polling_interval=s.poll_s,  # new jobs are notified; retries polled
                    stalled_worker_timeout=s.stalled_after_s,
                    shutdown_graceful_timeout=s.shutdown_grace_s,
                    install_signal_handlers=True,
                )
            finally:
                recovery.cancel()
                await asyncio.gather(recovery, return_exceptions=True)

    async def _recover_stalled(self) -> None:
        """Every ``heartbeat_s``: put back the jobs of workers whose heartbeat stopped."""
        s, manager = self.options, self.app.job_manager
        while True:
            await asyncio.sleep(s.heartbeat_s)
            try:
                stalled = await manager.get_stalled_jobs(
                    queue=s.queue_name, task_name=TASK, seconds_since_heartbeat=s.stalled_after_s
                )
                for job in stalled:
                    try:
                        await manager.retry_job(job)
                    except pexc.ConnectorException:
                        continue  # another worker put it back first
                    log.warning("job %s of a stalled worker put back in the queue", job.id)
            except pexc.ConnectorException as exc:
                log.warning("stalled-job check failed: %s", exc)

    def _run_job(self, context: procrastinate.JobContext, job_id: str) -> None:
        """The ``ragkeel.ingest`` task: one run of the job's ingest, its report recorded."""
        runner = self._runner
        if runner is None:
            raise _Permanent("no runner: this process is not a worker")
        spec = self._spec(job_id)
        if spec is None:
            raise _Permanent(f"job record {job_id} is gone")
        attempt = context.job.attempts
        self._record(job_id, "started_at = %s, runs = runs + 1", time.time())
        try:
            report = runner.run(spec, context.should_abort)
        except JobReleased:
            self._record_error(job_id, "RELEASED", "the worker stopped; the job is queued again")
            raise
        except Exception as exc:
            code = str(getattr(exc, "code", type(exc).__name__))
            self._record_error(job_id, code, str(exc))
            raise
        transient = transient_failures(report)
        final = not transient or attempt + 1 >= self.options.max_attempts
        error = ("RETRYABLE", ", ".join(transient)) if transient else (None, None)
        with self._db() as conn:
            conn.execute(
                "UPDATE ragkeel_ingest_jobs SET report = %s, error_code = %s, error_message = %s,"
                " finished_at = %s WHERE id = %s",
                (Jsonb(report.to_dict()), *error, time.time() if final else None, job_id),
            )
        if transient:
            raise TransientJobError(f"files failed on {', '.join(transient)}")
        runner.finish(spec)

    def _spec(self, job_id: str) -> JobSpec | None:
        with self._db() as conn:
            row = conn.execute(
                "SELECT * FROM ragkeel_ingest_jobs WHERE id = %s", (job_id,)
            ).fetchone()
        return _spec(row) if row else None

    def _record(self, job_id: str, assignments: str, *values: object) -> None:
        with self._db() as conn:
            conn.execute(
                f"UPDATE ragkeel_ingest_jobs SET {assignments} WHERE id = %s",
                (*values, job_id),
            )

    def _record_error(self, job_id: str, code: str, message: str) -> None:
        self._record(job_id, "error_code = %s, error_message = %s", code, message[:2000])


def _spec(row: Mapping[str, Any]) -> JobSpec:
    return JobSpec(
        tenant=row["tenant"],
        collection=row["collection"],
        paths=tuple(row["paths"]),
        principals=tuple(row["principals"]),
        names=dict(row["names"]),
        uploaded=bool(row["uploaded"]),
        prune=bool(row["prune"]),
        follow_symlinks=bool(row["follow_symlinks"]),
        language=row.get("language"),
    )


def _view(row: Mapping[str, Any]) -> JobView:
    status = row.get("status")
    attempts = int(row.get("attempts") or 0)
    if status is None or status == "todo":
        state: JobState = "retrying" if attempts or row["runs"] else "queued"
    else:
        state = _STATE.get(str(status), "queued")
    return JobView(
        id=row["id"],
        state=state,
        spec=_spec(row),
        attempts=int(row["runs"]),
        created_at=float(row["created_at"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        report=row["report"],
        error_code=row["error_code"],
        error_message=row["error_message"],
    )

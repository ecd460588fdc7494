"""Test tooling for the ingestion job queue (issue 13): real ``ragkeel worker`` processes, a
job's state polled until it settles, what the SQLite store holds (per document: content hash
and chunk count, plus duplicate checks), and the ``kill -9`` crash trial the tests and
``bench/ingest_queue.py`` run.

A crash trial: enqueue one job over a corpus, start a worker, ``SIGKILL`` it at a seeded random
moment while it is writing documents, start another worker, and wait for the job to succeed
(procrastinate's stalled-job recovery puts it back once the killed worker's heartbeat is older
than ``ingestion.jobs.stalled_after_s``). The store must then hold exactly what a synchronous
ingest of the same corpus holds: the same documents with the same content hashes and chunk
counts, no chunk twice (0 lost, 0 duplicated).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragkeel.jobs.model import JobQueue, JobSpec, JobState, JobView, spec_paths

FINAL: frozenset[JobState] = frozenset({"succeeded", "dead", "cancelled"})
STARTED: frozenset[JobState] = FINAL | {"running"}


def write_corpus(root: Path, n: int, *, words: int = 60) -> Path:
    """``n`` small Markdown files with distinct text (``doc000.md``...) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = " ".join(f"term{(i * 7 + j) % 997} topic{i}" for j in range(words))
        (root / f"doc{i:03d}.md").write_text(f"# Document {i}\n\n{body}\n")
    return root


def start_worker(
    env: Mapping[str, str], *args: str, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """``python -m ragkeel worker ARGS`` with ``env`` (its own process group)."""
    if log is None:
        return _popen(env, args, subprocess.DEVNULL)
    with open(log, "ab") as out:  # the child keeps its own descriptor
        return _popen(env, args, out)


def _popen(env: Mapping[str, str], args: tuple[str, ...], out: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ragkeel", "worker", *args],
        env=dict(env),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> int:
    """SIGTERM, then wait (SIGKILL if it does not end in ``timeout_s``); its exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(10)


def wait_job(
    queue: JobQueue,
    job_id: str,
    states: frozenset[JobState] = FINAL,
    *,
    timeout_s: float = 120.0,
    poll_s: float = 0.05,
) -> JobView:
    """Poll until the job is in one of ``states``; AssertionError at the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = queue.get(job_id, tenant=None)
        assert job is not None, f"job {job_id} vanished"
        if job.state in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.state} after {timeout_s}s")
        time.sleep(poll_s)


@dataclass(frozen=True, slots=True)
class StoreDigest:
    """What a SQLite store holds: document id -> (content hash, chunk count), and the chunk,
    vector and postings rows (each chunk once)."""

    documents: dict[str, tuple[str, int]]
    chunks: int
    distinct_chunks: int
    vectors: int
    postings: int

    @property
    def duplicated(self) -> int:
        return self.chunks - self.distinct_chunks


def store_digest(db: Path) -> StoreDigest:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        docs = {
            doc_id: (content_hash, int(count))
            for doc_id, content_hash, count in conn.execute(
                "SELECT d.id, d.content_hash, (SELECT count(*) FROM chunks c "
                "WHERE c.collection = d.collection AND c.document_id = d.id) FROM documents d"
            )
        }
        chunks, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT id) FROM chunks"
        ).fetchone()
        vectors = conn.execute("SELECT count(*) FROM chunk_vectors").fetchone()[0]
        postings = conn.execute("SELECT count(*) FROM chunk_terms").fetchone()[0]
    finally:
        conn.close()
    return StoreDigest(docs, int(chunks), int(distinct), int(vectors), int(postings))


@dataclass(frozen=True, slots=True)
class TrialResult:
    seed: int
    kill_after_s: float  # after the job was seen running
    killed_mid_run: bool  # the job had not finished when the worker was killed
    documents_at_kill: int  # documents in the store when it was killed
    runs: int  # runs the job took (2: the killed one and the recovery)
    recovered_s: float  # from the kill to the job's success
    lost: int  # documents of the reference missing or with another hash / chunk count
    extra: int  # documents not in the reference
    duplicated: int  # chunk rows beyond one per chunk id, vectors and postings included

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.extra == 0 and self.duplicated == 0


def crash_trial(
    queue: JobQueue,
    env: Mapping[str, str],
    corpus: Path,
    db: Path,
    reference: StoreDigest,
    *,
    seed: int,
    max_kill_after_s: float,
    log: Path | None = None,
    timeout_s: float = 300.0,
) -> TrialResult:
    """One ``kill -9`` trial over ``corpus`` into the store at ``db`` (empty at the start;
    ``env`` points the workers at it); ``reference`` is what a synchronous ingest stores."""
    rng = random.Random(seed)
    kill_after = rng.uniform(0.1, max_kill_after_s)
    job_id = queue.submit(
        JobSpec(tenant="default", collection="default", paths=spec_paths([str(corpus)]))
    )
    first = start_worker(env, log=log)
    try:
        wait_job(queue, job_id, STARTED, timeout_s=timeout_s)
        time.sleep(kill_after)
        os.kill(first.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    at_kill = queue.get(job_id, tenant=None)
    mid_run = at_kill is not None and at_kill.state not in FINAL
    docs_at_kill = len(store_digest(db).documents) if db.exists() else 0
    second = start_worker(env, log=log)
    try:
        done = wait_job(queue, job_id, timeout_s=timeout_s)
        recovered = time.monotonic() - killed_at
    finally:
        stop_worker(second)
    assert done.state == "succeeded", (
        f"job ended {done.state}: {done.error_code} {done.error_message}"
    )
    got = store_digest(db)
    lost = sum(1 for k, v in reference.documents.items() if got.documents.get(k) != v)
    extra = sum(1 for k in got.documents if k not in reference.documents)
    duplicated = (
        got.duplicated + (got.vectors - got.distinct_chunks) + (got.postings - got.distinct_chunks)
    )
    return TrialResult(
        seed=seed,
        kill_after_s=round(kill_after, 3),
        killed_mid_run=mid_run,
        documents_at_kill=docs_at_kill,
        runs=done.attempts,
        recovered_s=round(recovered, 2),
        lost=lost,
        extra=extra,
        duplicated=duplicated,
    )

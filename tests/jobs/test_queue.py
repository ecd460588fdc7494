"""The ingestion job queue end to end (issue 13): ``ragkeel ingest --queue`` and real ``ragkeel
worker`` processes on PostgreSQL, with the default SQLite store. A bad file ends with its stable
code and no retry; an embedder that is down is retried with backoff, then the job is dead,
listed by ``jobs list --failed`` and re-run by ``jobs retry``; SIGTERM lets a worker finish."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragkeel.cli.main import app
from ragkeel.container import Container
from ragkeel.errors import ConfigError
from ragkeel.jobs.model import JobQueue, JobSpec, JobView
from ragkeel.settings import load_settings
from ragkeel.testing.jobs import start_worker, stop_worker, store_digest, wait_job

from .conftest import write_docs

cli = CliRunner()


def run(*args: str) -> str:
    result = cli.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def drain(env: dict[str, str]) -> None:
    proc = start_worker(env, "--drain")
    assert proc.wait(120) == 0


def sigterm_mid_job(env: dict[str, str], queue: JobQueue, docs: Path) -> JobView:
    """Start a worker, enqueue ``docs``, SIGTERM the worker once the job runs; the job after
    the worker exited (cleanly)."""
    worker = start_worker(env)
    try:
        job_id = json.loads(run("ingest", "--queue", "--json", str(docs)))["job"]
        wait_job(queue, job_id, frozenset({"running", "succeeded"}), timeout_s=60, poll_s=0.01)
    finally:
        status = stop_worker(worker)
    assert status == 0
    job = queue.get(job_id, tenant=None)
    assert job is not None
    return job


def test_unset_queue_keeps_ingestion_synchronous_and_jobs_need_a_queue() -> None:
    with Container(load_settings()) as c:
        assert not c.queue_enabled
        with pytest.raises(ConfigError):
            _ = c.job_queue


def test_a_queue_without_a_database_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGKEEL_INGESTION__QUEUE", "procrastinate")
    with Container.load() as c, pytest.raises(ConfigError, match="queue database"):
        _ = c.job_queue


def test_cli_job_runs_in_a_worker_and_a_bad_file_keeps_its_code(
    queue_env: dict[str, str], queue: JobQueue, tmp_path: Path, _isolated_home: Path
) -> None:
    docs = write_docs(tmp_path / "docs", 5)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    job_id = json.loads(run("ingest", "--queue", "--json", str(docs)))["job"]
    assert queue.get(job_id, tenant=None).state == "queued"  # type: ignore[union-attr]
    assert not (_isolated_home / "ragkeel.db").exists()  # nothing ingested in this process

    drain(queue_env)

    job = wait_job(queue, job_id, timeout_s=5)
    assert job.state == "succeeded" and job.attempts == 1  # a bad file is not retried
    files = {Path(f["path"]).name: f for f in job.report["files"]}  # type: ignore[index]
    assert files["broken.pdf"]["status"] == "failed"
    assert files["broken.pdf"]["error_code"] == "PARSE_ERROR"
    assert sum(f["status"] == "ingested" for f in files.values()) == 5
    assert len(store_digest(_isolated_home / "ragkeel.db").documents) == 5
    assert job_id in run("jobs", "list")
    assert job_id not in run("jobs", "list", "--failed")


def test_embedder_down_is_retried_then_dead_then_rerun(
    queue_env: dict[str, str], queue: JobQueue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = write_docs(tmp_path / "docs", 3)
    job_id = json.loads(run("ingest", "--queue", "--json", str(docs)))["job"]
    with socket.socket() as s:  # a loopback port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = {
        **queue_env,
        "RAGKEEL_EMBEDDING__PROVIDER": "remote",
        "RAGKEEL_EMBEDDING__REMOTE__BASE_URL": f"http://127.0.0.1:{port}/v1",
        "RAGKEEL_EMBEDDING__REMOTE__MAX_RETRIES": "0",
        "RAGKEEL_EMBEDDING__REMOTE__DIMENSION": "64",
    }
    drain(down)  # two runs (max_attempts 2, no backoff in the test), both failing

    job = wait_job(queue, job_id, timeout_s=5)
    assert job.state == "dead" and job.attempts == 2
    assert job.error_code == "RETRYABLE" and "EMBEDDING_FAILED" in (job.error_message or "")
    codes = {f["error_code"] for f in job.report["files"]}  # type: ignore[index]
    assert codes == {"EMBEDDING_FAILED"}
    listed = json.loads(run("jobs", "list", "--failed", "--json"))
    assert [j["id"] for j in listed] == [job_id]

    assert "queued" in run("jobs", "retry", job_id) or "retrying" in run("jobs", "show", job_id)
    drain(queue_env)  # the embedder is back (the same hashing one)
    job = wait_job(queue, job_id, timeout_s=5)
    assert job.state == "succeeded" and job.error_code is None
    assert job.attempts == 3
    assert json.loads(run("jobs", "list", "--failed", "--json")) == []


def test_sigterm_lets_the_running_job_finish(
    queue_env: dict[str, str], queue: JobQueue, tmp_path: Path, _isolated_home: Path
) -> None:
    job = sigterm_mid_job(queue_env, queue, write_docs(tmp_path / "docs", 60, words=200))
    assert job.state == "succeeded"
    assert len(store_digest(_isolated_home / "ragkeel.db").documents) == 60


def test_unknown_job_is_job_not_found(queue: JobQueue) -> None:
    result = cli.invoke(app, ["jobs", "show", "job_nope"])
    assert result.exit_code != 0
    assert queue.get("job_nope", tenant=None) is None


def test_sigterm_past_the_grace_releases_the_job_to_the_next_worker(
    queue_env: dict[str, str], queue: JobQueue, tmp_path: Path, _isolated_home: Path
) -> None:
    impatient = {**queue_env, "RAGKEEL_INGESTION__JOBS__SHUTDOWN_GRACE_S": "0"}
    job = sigterm_mid_job(impatient, queue, write_docs(tmp_path / "docs", 200, words=200))
    job_id = job.id
    if job.state == "succeeded":  # the whole run fitted between two polls: nothing to release
        pytest.skip("the job finished before SIGTERM arrived")
    assert job.state == "retrying" and job.error_code == "RELEASED"
    drain(queue_env)
    job = wait_job(queue, job_id, timeout_s=5)
    assert job.state == "succeeded" and job.attempts == 2
    assert len(store_digest(_isolated_home / "ragkeel.db").documents) == 200


def test_with_the_postgres_store_the_queue_shares_its_database(
    queue_env: dict[str, str], postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAGKEEL_INGESTION__QUEUE_URL")
    monkeypatch.setenv("RAGKEEL_STORAGE__BACKEND", "postgres")
    monkeypatch.setenv("RAGKEEL_STORAGE__POSTGRES__URL", postgres_url)
    env = {k: v for k, v in queue_env.items() if k != "RAGKEEL_INGESTION__QUEUE_URL"}
    env |= {"RAGKEEL_STORAGE__BACKEND": "postgres", "RAGKEEL_STORAGE__POSTGRES__URL": postgres_url}
    docs = write_docs(tmp_path / "docs", 4)
    with Container.load() as c:
        job_id = c.job_queue.submit(JobSpec("default", "default", (str(docs),)))
        drain(env)
        job = wait_job(c.job_queue, job_id, timeout_s=5)
        assert job.state == "succeeded" and job.report is not None
        assert job.report["documents_written"] == 4
        assert c.store.stats().documents == 4


def test_the_language_travels_with_the_job(
    queue_env: dict[str, str], queue: JobQueue, tmp_path: Path, _isolated_home: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "stadt.txt").write_text("Die alten Häuser der Stadt.", encoding="utf-8")
    job_id = json.loads(run("ingest", "--queue", "--json", "--language", "German", str(docs)))[
        "job"
    ]
    spec = queue.get(job_id, tenant=None).spec  # type: ignore[union-attr]
    assert spec.language == "german"
    drain(queue_env)
    assert wait_job(queue, job_id, timeout_s=5).state == "succeeded"
    with Container.load() as c:
        assert c.store.collection_language("default") == "german"
        assert len(c.store.keyword.search("Haus", 5)) == 1
    refused = cli.invoke(app, ["ingest", "--queue", "--language", "english", str(docs)])
    assert getattr(refused.exception, "code", None) == "LANGUAGE_MISMATCH"  # before queueing
    assert len(queue.list(tenant=None)) == 1

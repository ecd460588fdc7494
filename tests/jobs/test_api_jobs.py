"""``POST /v1/documents`` with the queue on answers 202 and a job id; ``GET /v1/jobs/{id}`` shows
the job to its own tenant only (another tenant's id is 404, as an unknown one), with the
per-file report in public terms (names as uploaded, ``doc_`` ids, no server path) once a real
worker process has run it. The app restarting before the worker runs keeps the queued upload."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.testing.jobs import start_worker
from ragkeel.types import AccessScope

DOC = b"# Rotation policy\n\nEvery API key is rotated every ninety days by the platform team.\n"


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, host="0.0.0.0")) as c:  # auth required
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def drain(env: dict[str, str]) -> None:
    assert start_worker(env, "--drain").wait(120) == 0


def test_upload_is_queued_then_ingested_by_a_worker_and_scoped_to_its_tenant(
    client: TestClient, container: Container, queue_env: dict[str, str]
) -> None:
    a = container.keys.create("team-a", "ingest")[1]
    b = container.keys.create("team-b", "admin")[1]
    r = client.post(
        "/v1/documents",
        headers=bearer(a),
        data={"collection": "handbook"},
        files=[
            ("files", ("policy.md", DOC, "text/markdown")),
            ("files", ("broken.pdf", b"%PDF-1.4 nope", "application/pdf")),
        ],
    )
    assert r.status_code == 202, r.text
    body = r.json()
    job_id = body["job_id"]
    assert job_id.startswith("job_") and body["state"] == "queued"
    assert r.headers["location"] == f"/v1/jobs/{job_id}" == body["status_url"]
    assert body["files"] == ["policy.md", "broken.pdf"]

    queued = client.get(f"/v1/jobs/{job_id}", headers=bearer(a))
    assert queued.status_code == 200 and queued.json()["state"] == "queued"
    assert queued.json()["report"] is None
    other = client.get(f"/v1/jobs/{job_id}", headers=bearer(b))
    assert other.status_code == 404 and other.json()["code"] == "JOB_NOT_FOUND"
    assert client.get("/v1/jobs/job_0123456789abcdef0123", headers=bearer(a)).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}").status_code == 401

    drain(queue_env)

    done = client.get(f"/v1/jobs/{job_id}", headers=bearer(a))
    assert done.status_code == 200, done.text
    job = done.json()
    assert job["state"] == "succeeded" and job["attempts"] == 1
    files = {f["filename"]: f for f in job["report"]}
    assert files["policy.md"]["status"] == "ingested"
    assert files["policy.md"]["document_ids"][0].startswith("doc_")
    assert files["broken.pdf"]["error_code"] == "PARSE_ERROR"
    assert job["documents_written"] == 1 and job["chunks_written"] >= 1
    assert str(container.home) not in done.text and "/uploads/" not in done.text

    hits = client.get(
        "/v1/search",
        headers=bearer(a),
        params={"q": "rotated ninety days", "collection": "handbook"},
    )
    assert hits.status_code == 200 and hits.json()["hits"], hits.text
    # the bad file is gone from the upload area once the job succeeded, the good one kept
    kept = sorted(p.name for p in container.uploads_dir.rglob("*") if p.is_file())
    assert kept == ["policy.md"]


def test_json_text_is_queued_too(container: Container, queue_env: dict[str, str]) -> None:
    with TestClient(create_app(container)) as client:  # auth off on loopback
        r = client.post("/v1/documents", json={"id": "note-1", "text": "queued text about otters"})
        assert r.status_code == 202, r.text
        drain(queue_env)
        job = client.get(r.headers["location"]).json()
    assert job["state"] == "succeeded" and job["documents_written"] == 1


def test_a_restart_before_the_worker_runs_keeps_the_queued_upload(
    container: Container, queue_env: dict[str, str]
) -> None:
    with TestClient(create_app(container)) as first:
        r = first.post("/v1/documents", files=[("files", ("policy.md", DOC, "text/markdown"))])
        assert r.status_code == 202
    with Container.load() as again, TestClient(create_app(again)) as second:  # orphan sweep
        assert [p.name for p in again.uploads_dir.rglob("*.md")] == ["policy.md"]
        drain(queue_env)
        assert second.get(r.headers["location"]).json()["state"] == "succeeded"


def test_queue_database_down_is_503_and_keeps_no_file(
    monkeypatch: pytest.MonkeyPatch, _isolated_home: Path
) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("RAGKEEL_INGESTION__QUEUE", "procrastinate")
    monkeypatch.setenv("RAGKEEL_INGESTION__QUEUE_URL", f"postgresql://u@127.0.0.1:{port}/q")
    monkeypatch.setenv("RAGKEEL_EMBEDDING__PROVIDER", "hashing")
    monkeypatch.setenv("RAGKEEL_GENERATION__PROVIDER", "none")
    with Container.load() as c, TestClient(create_app(c)) as client:
        r = client.post("/v1/documents", files=[("files", ("policy.md", DOC, "text/markdown"))])
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "QUEUE_ERROR"
        assert str(port) not in r.text  # the queue's URL stays in the log
        assert not [p for p in c.uploads_dir.rglob("*") if p.is_file()]


def test_a_language_mismatch_is_refused_before_the_job_is_queued(
    client: TestClient, container: Container, queue_env: dict[str, str]
) -> None:
    key = container.keys.create("team-a", "ingest")[1]

    def upload(language: str) -> int:
        r = client.post(
            "/v1/documents",
            headers=bearer(key),
            data={"collection": "handbuch", "language": language},
            files=[("files", ("stadt.txt", "Die alten Häuser.".encode(), "text/plain"))],
        )
        return r.status_code

    assert upload("german") == 202
    drain(queue_env)
    assert container.store.collection_language("handbuch", scope=_tenant("team-a")) == "german"
    assert upload("english") == 409
    assert container.job_queue.list(tenant="team-a")[0].spec.language == "german"  # no new job
    assert len(container.job_queue.list(tenant="team-a")) == 1


def _tenant(name: str) -> AccessScope:
    return AccessScope(name, all_principals=True)

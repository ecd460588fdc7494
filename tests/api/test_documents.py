"""POST/GET/DELETE /v1/documents: uploads through the ingestion pipeline, listing, deletion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import ragkeel
from ragkeel.api.request_limits import Limits

from .conftest import Api, MakeApp

NOTES = b"# Deploy notes\n\nThe blue-green deploy switches traffic after the smoke tests pass.\n"
FAQ = b"Frequently asked.\n\nInvoices are emailed on the first business day of the month.\n"


def _upload(
    client: TestClient, *files: tuple[str, bytes], collection: str = "up"
) -> dict[str, Any]:
    r = client.post(
        "/v1/documents",
        params={"collection": collection},
        files=[("files", (name, data)) for name, data in files],
    )
    return {"status": r.status_code, **r.json()}


def test_upload_list_search_delete_round_trip(client: TestClient, api: Api) -> None:
    report = _upload(client, ("notes.md", NOTES), ("faq.txt", FAQ))
    assert report["status"] == 200 and report["collection"] == "up"
    by_name = {f["filename"]: f for f in report["files"]}
    assert {f["status"] for f in by_name.values()} == {"ingested"}
    notes = by_name["notes.md"]
    assert notes["chunks"] >= 1 and notes["source"] == "notes.md"
    assert [i.startswith("doc_") for i in notes["document_ids"]] == [True]  # no server path
    (kept,) = _kept(api, "notes.md")

    again = _upload(client, ("notes.md", NOTES))
    assert [f["status"] for f in again["files"]] == ["unchanged"]

    listing = client.get("/v1/documents", params={"collection": "up"}).json()
    assert listing["total"] == 2
    docs = {d["filename"]: d for d in listing["documents"]}
    assert docs["notes.md"]["title"] == "Deploy notes" and docs["notes.md"]["chunks"] >= 1
    assert docs["faq.txt"]["source"] == "faq.txt"
    assert docs["notes.md"]["id"] == notes["document_ids"][0]

    hits = client.get("/v1/search", params={"q": "blue-green deploy", "collection": "up"}).json()
    assert hits["hits"][0]["document_id"] == notes["document_ids"][0]

    doc_id = notes["document_ids"][0]
    r = client.delete(f"/v1/documents/{doc_id}", params={"collection": "up"})
    assert r.status_code == 200 and r.json() == {"collection": "up", "id": doc_id, "deleted": True}
    assert not kept.exists()  # its last document is gone: so is the file
    assert client.get("/v1/documents", params={"collection": "up"}).json()["total"] == 1

    gone = client.delete(f"/v1/documents/{doc_id}", params={"collection": "up"})
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"
    assert gone.json()["code"] == "DOCUMENT_NOT_FOUND"


def _kept(api: Api, name: str) -> list[Path]:
    """The files named ``name`` kept in the upload area."""
    return sorted((api.container.settings.home / "uploads").rglob(name))


def test_json_text_document(client: TestClient) -> None:
    body = {
        "text": "The on-call rota changes every Monday at nine.",
        "title": "On-call",
        "id": "oncall-1",
        "collection": "ops",
        "metadata": {"team": "sre"},
    }
    r = client.post("/v1/documents", json=body)
    assert r.status_code == 200, r.text
    (file,) = r.json()["files"]
    assert file["status"] == "ingested" and file["source"] == "oncall-1"
    (doc_id,) = file["document_ids"]
    (doc,) = client.get("/v1/documents", params={"collection": "ops"}).json()["documents"]
    assert (doc["id"], doc["title"], doc["source"], doc["filename"], doc["metadata"]) == (
        doc_id,
        "On-call",
        "oncall-1",
        "oncall-1",
        {"team": "sre"},
    )
    assert client.delete("/v1/documents/oncall-1", params={"collection": "ops"}).status_code == 404
    assert client.delete(f"/v1/documents/{doc_id}", params={"collection": "ops"}).status_code == 200


def test_unsupported_upload_is_a_problem_and_leaves_nothing(client: TestClient, api: Api) -> None:
    r = client.post("/v1/documents", files=[("files", ("tool.exe", b"MZ\x90\x00"))])
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert (
        problem["code"] == "UNSUPPORTED_TYPE"
        and problem["report"]["files"][0]["filename"] == "tool.exe"
    )
    uploads = api.container.settings.home / "uploads"
    assert not [p for p in uploads.rglob("*") if p.is_file()]


def test_upload_filenames_are_sanitised(client: TestClient, api: Api) -> None:
    report = _upload(client, ("../../etc/../.hidden notes.md", NOTES))
    (file,) = report["files"]
    assert file["status"] == "ingested" and file["source"] == "hidden notes.md"
    assert len(_kept(api, "hidden notes.md")) == 1


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("/etc/passwd.md", "passwd.md"),
        ("../../../../etc/cron.d/evil.md", "evil.md"),
        ("..\\..\\C:\\Windows\\evil.md", "evil.md"),
        ("evil\x00.md", "evil_00.md"),
        ("%2e%2e%2fevil.md", "_2e_2e_2fevil.md"),
    ],
)
def test_hostile_upload_names_stay_in_the_upload_area(
    client: TestClient, api: Api, name: str, stored: str
) -> None:
    """Traversal, absolute and Windows paths and a NUL in a multipart file name (issue 11)."""
    report = _upload(client, (name, NOTES))
    (file,) = report["files"]
    assert file["status"] == "ingested", report
    assert file["source"] == stored
    uploads = (api.container.settings.home / "uploads").resolve()
    (kept,) = _kept(api, stored)
    assert kept.resolve().is_relative_to(uploads) and kept.read_bytes() == NOTES


@pytest.mark.parametrize("doc_id", ["../../etc/passwd", "/abs/path", "..\\..\\x"])
def test_hostile_text_document_ids_stay_in_the_upload_area(
    client: TestClient, api: Api, doc_id: str
) -> None:
    r = client.post("/v1/documents", params={"collection": "up"}, json={"text": "t", "id": doc_id})
    assert r.status_code == 200, r.text
    (file,) = r.json()["files"]
    uploads = (api.container.settings.home / "uploads").resolve()
    (kept,) = _kept(api, "*.jsonl")
    assert kept.resolve().is_relative_to(uploads)
    assert file["source"] == doc_id  # the id is data, not a path; the client's own, echoed
    (listed,) = client.get("/v1/documents", params={"collection": "up"}).json()["documents"]
    assert listed["id"] == file["document_ids"][0] and listed["source"] == doc_id


def test_bad_bodies(client: TestClient) -> None:
    r = client.post("/v1/documents", json={"title": "no text"})
    assert r.status_code == 422 and r.json()["code"] == "VALIDATION_ERROR"
    assert "text" in r.json()["detail"]
    r = client.post("/v1/documents", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    r = client.post("/v1/documents", files=[("other", ("a.md", NOTES))])
    assert r.status_code == 422 and r.json()["code"] == "INVALID_UPLOAD"


def test_body_limit(make_app: MakeApp) -> None:
    app = make_app(limits=Limits(max_body_bytes=1000)).app
    with TestClient(app) as client:
        r = client.post("/v1/documents", files=[("files", ("big.txt", b"word " * 400))])
        assert r.status_code == 413 and r.json()["code"] == "REQUEST_TOO_LARGE"
        chunked = (b"x" * 300 for _ in range(5))  # no Content-Length: counted as it arrives
        r = client.post(
            "/v1/documents", content=chunked, headers={"content-type": "application/json"}
        )
        assert r.status_code == 413 and r.json()["code"] == "REQUEST_TOO_LARGE"
        assert client.post("/v1/documents", json={"text": "small enough"}).status_code == 200


def test_duplicate_names_are_refused_before_anything_is_kept(client: TestClient, api: Api) -> None:
    r = client.post(
        "/v1/documents",
        files=[("files", ("a.md", NOTES)), ("files", ("b.md", FAQ)), ("files", ("a.md", FAQ))],
    )
    assert r.status_code == 422 and r.json()["code"] == "INVALID_UPLOAD"
    uploads = api.container.settings.home / "uploads"
    assert not [p for p in uploads.rglob("*") if p.is_file()]  # a.md used to stay, orphaned


_CRASHING_UPLOAD = """
import io, os, sys
from ragkeel.api.public_ids import PublicView, load_key
from ragkeel.api.uploads import UploadArea, ingest_files
from ragkeel.container import Container
from ragkeel.settings import load_settings

class DyingClient(io.RawIOBase):
    # the upload's bytes: the server process dies (SIGKILL, OOM...) while they are copied
    def __init__(self):
        self.reads = 0
    def readable(self):
        return True
    def readinto(self, buffer):
        self.reads += 1
        if self.reads > 1:
            os._exit(9)
        buffer[:5] = b"# Hal"
        return 5

c = Container(load_settings())
area = UploadArea(c.settings.home / "uploads")
view = PublicView.of(None, load_key(c.settings.home), area.root)
good = [("good.md", io.BytesIO(sys.argv[1].encode()))]
ingest_files(area, c.pipeline, c.store, "up", good, view=view)
print("good stored", flush=True)
ingest_files(area, c.pipeline, c.store, "up", [
    ("renamed-not-stored.md", io.BytesIO(sys.argv[1].encode())),
    ("half-written.md", DyingClient()),
], view=view)
"""


def test_uploads_a_crash_left_without_documents_are_removed_at_start_up(
    make_app: MakeApp, tmp_path: Path
) -> None:
    api = make_app()
    home = api.container.settings.home
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(ragkeel.__file__).resolve().parents[1]),
        "RAGKEEL_HOME": str(home),
        "RAGKEEL_EMBEDDING__PROVIDER": "hashing",
        "RAGKEEL_EMBEDDING__HASHING_DIMENSION": "256",
        "RAGKEEL_EMBEDDING__CACHE": "false",
        "RAGKEEL_INGESTION__CHUNK_TOKENS": "64",
    }
    crashed = subprocess.run(
        [sys.executable, "-c", _CRASHING_UPLOAD, NOTES.decode()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert crashed.returncode == 9 and "good stored" in crashed.stdout, crashed.stderr
    uploads = home / "uploads"
    left = sorted(p.name for p in uploads.rglob("*") if p.is_file())
    assert "good.md" in left and "renamed-not-stored.md" in left
    assert any(name.startswith(".upload-") for name in left)  # the half-written temporary file

    with TestClient(api.app) as client:  # start-up
        assert sorted(p.name for p in uploads.rglob("*") if p.is_file()) == ["good.md"]
        listed = client.get("/v1/documents", params={"collection": "up"}).json()
        assert [d["filename"] for d in listed["documents"]] == ["good.md"]
        again = _upload(client, ("renamed-not-stored.md", NOTES))
        assert again["status"] == 200 and again["files"][0]["status"] == "ingested"

"""No response of any route names a server path (issue 11): document ids are the service's
(``doc_...``) and sources are file names. The index holds the shared corpus ingested from a
directory outside ``RAGKEEL_HOME`` (as ``ragkeel ingest`` does) and uploads (files, a
multi-record JSON-lines file, JSON text); then search (every mode), query (JSON and events),
chat (JSON and stream), the document list, uploads that fail or partly fail, deletions and
their 404s are swept: not one response body contains the test's temporary directory (home,
upload area and corpus are all under it), and every ``document_id``/``source`` is a public id
and a bare name."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corpus import COLLECTION, ON_TOPIC
from ragkeel.api.public_ids import KEY_FILE, PublicView, internal_id, load_key, public_id
from ragkeel.errors import ReadError, StorageError
from ragkeel.types import AccessScope

from .conftest import Api

PUBLIC_ID = re.compile(r"doc_[0-9a-f]{32}")
NOTES = b"# Deploy notes\n\nThe blue-green deploy switches traffic after the smoke tests pass.\n"
ROWS = b'{"text": "Invoices are emailed monthly."}\n{"text": "Refunds take five days."}\n'
BROKEN_ROWS = b'{"text": "Parcels ship daily."}\n{not json\n'


def _names(body: Any) -> list[tuple[str, str]]:
    """Every ``(key, value)`` of ``body`` (nested) whose key names a document."""
    out: list[tuple[str, str]] = []
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("document_id", "source", "id", "filename") and isinstance(value, str):
                out.append((key, value))
            elif key == "document_ids" and isinstance(value, list):
                out.extend((key, v) for v in value)
            else:
                out.extend(_names(value))
    elif isinstance(body, list):
        for value in body:
            out.extend(_names(value))
    return out


def _bodies(text: str) -> list[Any]:
    """The JSON of a response, or of each ``data:`` line of an event stream."""
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        lines = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
        return [json.loads(line) for line in lines if line != "[DONE]"]


class Sweep:
    def __init__(self, client: TestClient, root: Path) -> None:
        self.client, self.root = client, str(root.resolve())
        self.seen: dict[str, int] = {}
        self.problems: list[str] = []

    def __call__(self, method: str, url: str, **kwargs: Any) -> Any:
        r = self.client.request(method, url, **kwargs)
        key = f"{method} {url.split('?')[0]} {r.status_code}"
        self.seen[key] = self.seen.get(key, 0) + 1
        echoed = self.root in url  # the client's own path, echoed as the problem's instance
        if (self.root in r.text and not echoed) or "/uploads/" in r.text:
            self.problems.append(f"{key}: a server path in {r.text[:500]}")
        for body in _bodies(r.text):
            for name, value in _names(body):
                ok = (
                    PUBLIC_ID.fullmatch(value)
                    if name in ("document_id", "document_ids")
                    else "/" not in value and "\\" not in value
                )
                if name != "id" and not ok:
                    self.problems.append(f"{key}: {name}={value!r}")
        return r


def test_no_response_names_a_server_path(api: Api, tmp_path: Path) -> None:
    with TestClient(api.app) as client:
        sweep = Sweep(client, tmp_path)
        up = {"collection": "up"}
        files = [("files", ("notes.md", NOTES)), ("files", ("rows.jsonl", ROWS))]
        report = sweep("POST", "/v1/documents", params=up, files=files).json()
        by_name = {f["filename"]: f for f in report["files"]}
        assert by_name["notes.md"]["source"] == "notes.md"
        assert len(by_name["rows.jsonl"]["document_ids"]) == 2
        text = {"text": "The on-call rota changes every Monday.", "id": "oncall-1"}
        (oncall,) = sweep("POST", "/v1/documents", params=up, json=text).json()["files"]
        assert oncall["source"] == "oncall-1"
        partial = sweep(
            "POST", "/v1/documents", params=up, files=[("files", ("b.jsonl", BROKEN_ROWS))]
        )
        assert partial.json()["files"][0]["status"] == "partial", partial.text
        for name, data in (("bad.pdf", b"%PDF-1.4 not really"), ("tool.exe", b"MZ\x90\x00")):
            failed = sweep("POST", "/v1/documents", params=up, files=[("files", (name, data))])
            assert failed.status_code >= 400, failed.text

        listing = {}
        for collection in (COLLECTION, "up"):
            r = sweep("GET", "/v1/documents", params={"collection": collection})
            listing[collection] = r.json()["documents"]
        sources = {d["source"] for d in listing["up"]}
        assert {"notes.md", "rows.jsonl#line-1", "rows.jsonl#line-2", "oncall-1"} <= sources
        assert {d["source"] for d in listing[COLLECTION]} == {"keys.md", "outage.txt", "pricing.md"}

        for collection in (COLLECTION, "up"):
            for mode in ("bm25", "dense", "hybrid"):
                q = {"q": "rotate API key deploy invoices", "mode": mode, "collection": collection}
                hits = sweep("GET", "/v1/search", params=q).json()["hits"]
                assert hits and all(
                    h["source"] in sources | {"keys.md", "outage.txt", "pricing.md"} for h in hits
                )
        for mode in ("generative", "extractive"):
            body = {"question": ON_TOPIC, "mode": mode, "collection": COLLECTION}
            answer = sweep("POST", "/v1/query", json=body).json()
            assert answer["citations"], answer
            assert {c["source"] for c in answer["citations"]} == {"keys.md"}
            sweep("POST", "/v1/query", json={**body, "stream": True})
            chat = {
                "model": "ragkeel",
                "mode": mode,
                "collection": COLLECTION,
                "messages": [{"role": "user", "content": ON_TOPIC}],
            }
            out = sweep("POST", "/v1/chat/completions", json=chat).json()
            assert "keys.md" in json.dumps(out["ragkeel"]["citations"])
            sweep("POST", "/v1/chat/completions", json={**chat, "stream": True})

        internal = str(sorted(tmp_path.glob("docs/keys.md"))[0])
        for doc_id in (internal, "keys.md", "doc_" + "0" * 32, "../etc/passwd"):
            gone = sweep("DELETE", f"/v1/documents/{doc_id}", params={"collection": COLLECTION})
            assert gone.status_code == 404  # DOCUMENT_NOT_FOUND (a path: NOT_FOUND, no route)
        for d in listing["up"]:
            deleted = sweep("DELETE", f"/v1/documents/{d['id']}", params=up)
            assert deleted.status_code == 200 and deleted.json()["id"] == d["id"]
            again = sweep("DELETE", f"/v1/documents/{d['id']}", params=up)
            assert again.status_code == 404

    assert sweep.problems == []
    assert len(sweep.seen) >= 12, sweep.seen


def test_public_ids_are_keyed_per_tenant_and_map_back_only_within_scope(api: Api) -> None:
    store, home = api.container.store, api.container.settings.home
    key = load_key(home)
    assert load_key(home) == key and len(key) == 32  # made once, then read
    assert (home / KEY_FILE).stat().st_mode & 0o777 == 0o600
    scope = AccessScope(all_principals=True)
    (internal,) = [
        i
        for ids in store.documents_by_source(COLLECTION, scope=scope).values()
        for i in ids
        if i.endswith("keys.md")
    ]
    mine = public_id(key, scope.tenant, internal)
    assert PUBLIC_ID.fullmatch(mine) and mine != public_id(key, "team-b", internal)
    assert mine != public_id(
        b"k" * 32, scope.tenant, internal
    )  # a guessed path cannot be confirmed
    assert internal_id(store, key, scope, COLLECTION, mine) == internal
    team_b = AccessScope("team-b", all_principals=True)
    assert internal_id(store, key, team_b, COLLECTION, mine) is None
    assert internal_id(store, key, team_b, COLLECTION, public_id(key, "team-b", internal)) is None
    assert internal_id(store, key, scope, COLLECTION, internal) is None  # a path is no id


def test_a_damaged_key_is_refused_not_replaced(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_bytes(b"short")
    with pytest.raises(StorageError, match="damaged"):
        load_key(tmp_path)
    assert (tmp_path / KEY_FILE).read_bytes() == b"short"


@pytest.mark.parametrize(
    ("source", "document_id", "shown"),
    [
        ("/srv/docs/policy.md", "/srv/docs/policy.md", "policy.md"),
        ("/srv/docs/rows.csv", "/srv/docs/rows.csv#line-3", "rows.csv#line-3"),
        ("/srv/docs/corpus.jsonl", "q-17", "corpus.jsonl#q-17"),
        ("C:\\data\\notes.txt", "C:\\data\\notes.txt", "notes.txt"),
    ],
)
def test_sources_are_file_names(source: str, document_id: str, shown: str, tmp_path: Path) -> None:
    view = PublicView.of(None, b"k" * 32, tmp_path / "uploads")
    assert view.source(source, document_id) == shown


def test_messages_name_files_not_server_paths(tmp_path: Path) -> None:
    home = tmp_path / "home"
    view = PublicView.of(None, b"k" * 32, home / "uploads", home)
    kept = home.resolve() / "uploads" / "t-1" / "c-2" / "policy.md"
    message = (
        f"cannot parse {kept}: bad header; see '{home.resolve()}/logs/x.log', {home.resolve()}"
    )
    assert view.scrub(message) == "cannot parse policy.md: bad header; see '[server]', [server]"


def test_problem_details_name_no_server_path(api: Api) -> None:
    """Whatever an error's message says, its problem+json names no path under the home."""
    home = api.container.settings.home.resolve()
    kept = home / "uploads" / "default-1" / "up-2" / "policy.md"

    @api.app.get("/test-only/broken")
    def broken() -> None:
        raise ReadError(f"cannot read {kept}: permission denied; see {home}/logs/ingest.log")

    with TestClient(api.app) as client:
        r = client.get("/test-only/broken")
    assert r.status_code == 422 and r.json()["code"] == "READ_ERROR", r.text
    assert r.json()["detail"] == "cannot read policy.md: permission denied; see [server]"
    assert str(home) not in r.text

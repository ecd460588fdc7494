"""Secrets never leave (issue 11): a session with distinctive secret strings — the chat
provider's API key, the remote embedder's key, credentials in a URL, the caller's bearer key —
then a grep of everything the service wrote for them: every file under ``RAGKEEL_HOME`` (the
SQLite databases and their journals included), stdout and stderr of the in-process service and
of the command line, every log record (DEBUG and up, third-party loggers included), and every
HTTP response. Zero hits.

The session: ingest, questions over HTTP with the bearer key (plain and streamed,
``/v1/query`` and chat) against a provider that fails *and echoes the key it was sent* in its
error body (401, then 500: the nastiest provider), search, an upload and the document list,
``/readyz``, then, on the command line, ``ragkeel ask`` (the same failing provider), ``ragkeel
traces --json``, ``ragkeel trace ID`` of a failed answer and ``ragkeel config show --json``. It checks that the secrets were in
play (the provider saw its key; the answers degraded because of it), so the test cannot pass by
never using them.

Separately: credentials embedded in a provider's or an embedder's URL are used for the request
(Basic auth) but masked in every error message.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient

from corpus import ON_TOPIC, TEST_GATE, write_corpus
from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.embeddings.remote import RemoteEmbedder
from ragkeel.errors import ChatModelError, EmbeddingError
from ragkeel.gateway.base import ChatMessage, ChatRequest
from ragkeel.gateway.providers.openai_compat import OpenAICompatChatModel
from ragkeel.settings import load_settings

PROVIDER_KEY = "sk-prov-c4n4ry-5e1f0a93"
EMBEDDER_KEY = "sk-embed-c4n4ry-77b2c1d0"
URL_PASSWORD = "pw-c4n4ry-3388aa"
BEARER_KEY = "rk-bearer-c4n4ry-91d3ee"
SECRETS = (PROVIDER_KEY, EMBEDDER_KEY, URL_PASSWORD, BEARER_KEY)


class EchoingProvider(BaseHTTPRequestHandler):
    """Fails every call, quoting the headers it got (the key among them) in its error body:
    401 first, then 500 (alternating), as some real providers quote a bad key back."""

    calls: ClassVar[list[dict[str, str]]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        with self.lock:
            self.calls.append(dict(self.headers))
            status = 401 if len(self.calls) % 2 else 500
        body = json.dumps(
            {"error": {"message": f"Incorrect API key provided: {dict(self.headers)}"}}
        ).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def echoing_provider() -> Iterator[str]:
    EchoingProvider.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoingProvider)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _hits(text: str | bytes, where: str) -> list[str]:
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return [f"{where}: {secret}" for secret in SECRETS if secret.encode() in data]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragkeel", *args],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_no_secret_in_anything_the_service_wrote(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    docs = write_corpus(tmp_path / "docs")
    caplog.set_level(logging.DEBUG)
    hits: list[str] = []
    with echoing_provider() as provider_url:
        env = {
            "RAGKEEL_HOME": str(home),
            "RAGKEEL_CONFIG": str(tmp_path / "none.yaml"),
            "RAGKEEL_EMBEDDING__PROVIDER": "hashing",
            "RAGKEEL_EMBEDDING__CACHE": "false",
            "RAGKEEL_EMBEDDING__REMOTE__API_KEY": EMBEDDER_KEY,
            "RAGKEEL_EMBEDDING__REMOTE__BASE_URL": f"https://svc:{URL_PASSWORD}@embed.invalid/v1",
            "RAGKEEL_GENERATION__PROVIDER": "openai",
            "RAGKEEL_GENERATION__OPENAI__BASE_URL": provider_url,
            "RAGKEEL_GENERATION__OPENAI__API_KEY": PROVIDER_KEY,
            "RAGKEEL_GENERATION__GATE_THRESHOLD": str(TEST_GATE),
            "RAGKEEL_GATEWAY__RETRY__MAX_RETRIES": "0",
        }
        (tmp_path / "none.yaml").write_text("{}\n")
        for name, value in env.items():
            monkeypatch.setenv(name, value)

        outputs: list[tuple[str, str]] = []
        container = Container(load_settings())
        assert container.pipeline.ingest([str(docs)], "kb").exit_code == 0
        bearer = {"Authorization": f"Bearer {BEARER_KEY}"}
        ask = {"question": ON_TOPIC, "collection": "kb"}
        chat = {"messages": [{"role": "user", "content": ON_TOPIC}], "collection": "kb"}
        with TestClient(create_app(container), headers=bearer) as client:
            responses = [
                client.post("/v1/query", json=ask),
                client.post("/v1/query", json={**ask, "stream": True}),
                client.post("/v1/chat/completions", json=chat),
                client.post("/v1/chat/completions", json={**chat, "stream": True}),
                client.get("/v1/search", params={"q": ON_TOPIC}),
                client.post(
                    "/v1/documents",
                    params={"collection": "up"},
                    files=[("files", ("notes.md", b"# Notes\n\nRotate keys often.\n"))],
                ),
                client.get("/v1/documents", params={"collection": "up"}),
                client.get("/readyz"),
                client.post("/v1/query", json={"question": " "}),  # an error of the caller's
            ]
            answer = responses[0].json()
            assert answer["degraded"], answer  # the provider failed: the secret was in play
            for n, r in enumerate(responses):
                assert r.status_code < 500, r.text
                hits += _hits(r.text, f"response {n}") + _hits(str(r.headers), f"headers {n}")
        assert EchoingProvider.calls, "the provider was never called"
        sent = {c.get("Authorization") or c.get("authorization") for c in EchoingProvider.calls}
        assert sent == {f"Bearer {PROVIDER_KEY}"}

        done = _cli("ask", ON_TOPIC, "--collection", "kb")
        outputs += [("ask stdout", done.stdout), ("ask stderr", done.stderr)]
        traces = _cli("traces", "--json", "--last", "50")
        assert traces.returncode == 0, traces.stderr
        outputs += [("traces", traces.stdout), ("traces stderr", traces.stderr)]
        recorded = json.loads(traces.stdout)
        assert len(recorded) >= 5 and any(t.get("error") or t.get("degraded") for t in recorded)
        failed = next(t for t in recorded if t.get("error") or t.get("degraded"))
        one = _cli("trace", failed["id"])
        assert one.returncode == 0, one.stderr
        outputs += [(f"trace {failed['id']}", one.stdout + one.stderr)]
        shown = _cli("config", "show", "--json")
        assert shown.returncode == 0, shown.stderr
        outputs += [("config show", shown.stdout + shown.stderr)]
        assert json.loads(shown.stdout)["generation"]["openai"]["api_key"] == "**********"

    for where, text in outputs:
        hits += _hits(text, where)
    captured = capfd.readouterr()
    hits += _hits(captured.out, "stdout") + _hits(captured.err, "stderr")
    hits += _hits(caplog.text, "log text")
    for record in caplog.records:
        hits += _hits(repr(record.args) + record.getMessage(), f"log {record.name}")
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "traces.db" for p in files) and any(p.suffix == ".db" for p in files)
    for path in files:
        hits += _hits(path.read_bytes(), str(path.relative_to(home)))
    scanned = sum(p.stat().st_size for p in files)
    print(  # the figures of docs/benchmarks.md
        f"scanned {len(files)} files ({scanned} bytes) under RAGKEEL_HOME, "
        f"{len(caplog.records)} log records, {len(outputs)} command outputs, "
        f"{len(responses)} responses; provider calls {len(EchoingProvider.calls)}; hits {len(hits)}"
    )
    assert hits == []


def test_url_credentials_are_used_but_never_named_in_errors() -> None:
    with echoing_provider() as url:
        with_creds = url.replace("http://", f"http://svc:{URL_PASSWORD}@")
        model = OpenAICompatChatModel(with_creds, "m", api_key=None, timeout_s=5)
        request = ChatRequest(messages=(ChatMessage("user", "hi"),), max_tokens=8)
        errors: list[str] = []
        for _ in range(2):  # 401, then 500
            with pytest.raises(ChatModelError) as failed:
                model.complete(request)
            errors.append(str(failed.value) + repr(failed.value.to_dict()))
        model.close()
        embedder = RemoteEmbedder(with_creds, "e", max_retries=0, timeout_s=5)
        with pytest.raises(EmbeddingError) as embed_failed:
            embedder.embed_documents(["hi"])
        errors.append(str(embed_failed.value))
        embedder.close()
    assert all(c["Authorization"].startswith("Basic ") for c in EchoingProvider.calls)  # used
    assert all(URL_PASSWORD not in e and "127.0.0.1" in e for e in errors), errors

"""Fixtures for the embedder tests: a scriptable OpenAI-compatible server on 127.0.0.1 and the
installed ONNX model (verified once per session into a temporary models dir)."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ragkeel.embeddings.hashing import HashingEmbedder

if TYPE_CHECKING:
    from ragkeel.embeddings.onnx import OnnxEmbedder


@dataclass
class Reply:
    """One scripted answer; the server falls back to a correct answer when the script is empty."""

    status: int = 200
    body: bytes | None = None  # raw body instead of the computed one
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop_vectors: int = 0  # answer with this many vectors too few
    echo_auth: bool = False  # put the Authorization header in the body (key-leak test)


@dataclass
class Seen:
    path: str
    authorization: str | None
    payload: Any


class FakeEmbeddingServer:
    """``POST /v1/embeddings`` backed by ``HashingEmbedder`` (rows sent in reverse order, with
    their ``index``), plus a queue of scripted failures."""

    def __init__(self, dimension: int = 32) -> None:
        self.dimension = dimension
        self.embedder = HashingEmbedder(dimension)
        self.script: deque[Reply] = deque()
        self.requests: list[Seen] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.httpd = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def then(self, *replies: Reply) -> FakeEmbeddingServer:
        self.script.extend(replies)
        return self

    def record(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            return self.script.popleft() if self.script else Reply()

    def answer(self, payload: Any, reply: Reply) -> bytes:
        texts = payload["input"]
        vectors = self.embedder.embed_documents(texts)
        data = [
            {"object": "embedding", "index": i, "embedding": [float(x) for x in vectors[i]]}
            for i in range(len(texts) - reply.drop_vectors)
        ]
        body = {"object": "list", "model": payload["model"], "data": data[::-1]}
        return json.dumps(body).encode()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected in the timeout tests


def _handler_for(server: FakeEmbeddingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            auth = self.headers.get("Authorization")
            payload = json.loads(raw) if raw else None
            reply = server.record(Seen(self.path, auth, payload))
            if reply.delay_s and server.stopping.wait(reply.delay_s):
                return
            body = reply.body
            if self.path != "/v1/embeddings":
                reply, body = Reply(status=404), b'{"error": "not found"}'
            elif reply.echo_auth:
                body = json.dumps({"error": f"bad key in header {auth}"}).encode()
            elif body is None:
                body = server.answer(payload, reply) if reply.status == 200 else b'{"error":"x"}'
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake_server() -> Iterator[FakeEmbeddingServer]:
    server = FakeEmbeddingServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=2)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def onnx_embedder(models_dir: Path) -> OnnxEmbedder:
    from ragkeel.embeddings.onnx import OnnxEmbedder

    return OnnxEmbedder.from_installed_packages(models_dir, threads=2, batch_size=8)

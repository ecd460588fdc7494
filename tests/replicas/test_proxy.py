"""``ragkeel.testing.proxy``: ``make cluster``'s round-robin front door: connections alternate
over the replicas, and one that refuses is skipped."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import pytest

from fake_http import QuietServer
from ragkeel.testing.services import free_port


def _named(name: str) -> QuietServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = name.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return QuietServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def upstreams() -> Iterator[list[QuietServer]]:
    import threading

    servers = [_named("a"), _named("b")]
    for s in servers:
        threading.Thread(
            target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
    yield servers
    for s in servers:
        s.shutdown()
        s.server_close()


def _proxy(port: int, targets: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragkeel.testing.proxy", "--listen", str(port), *targets]
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the proxy did not start")


def test_connections_alternate_and_a_refusing_upstream_is_skipped(
    upstreams: list[QuietServer],
) -> None:
    targets = [f"127.0.0.1:{s.server_address[1]}" for s in upstreams]
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    port = free_port()
    proc = _proxy(port, [*targets, dead])
    try:
        seen = [httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text for _ in range(9)]
    finally:
        proc.terminate()
        proc.wait(10)
    # every request answered (the dead upstream's turn passes on), both replicas in turn
    assert len(seen) == 9 and seen.count("a") >= 3 and seen.count("b") >= 3, seen

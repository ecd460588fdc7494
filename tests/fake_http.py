"""The loopback plumbing every scripted fake HTTP server in the tests shares: a threaded server
on 127.0.0.1 that stays quiet when clients hang up, a script of replies handed out in order
(a default reply once it runs out), every request recorded, and a start/stop that never hangs.
Each fake keeps only its protocol: the handler that turns a reply into bytes."""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

R = TypeVar("R")


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up (timeouts, closed streams) are expected


class ScriptedServer(Generic[R]):
    """``then(*replies)`` queues replies; ``record`` logs a request and returns the next one."""

    def __init__(
        self,
        handler_for: Callable[[Any], type[BaseHTTPRequestHandler]],
        default: Callable[[], R],
    ) -> None:
        self.script: deque[R] = deque()
        self.requests: list[tuple[str, Any, Any]] = []
        self.events_sent = 0
        self.disconnected = threading.Event()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._default = default
        self.httpd = QuietServer(("127.0.0.1", 0), handler_for(self))
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def then(self, *replies: R) -> ScriptedServer[R]:
        self.script.extend(replies)
        return self

    def record(self, path: str, meta: Any, payload: Any) -> R:
        with self._lock:
            self.requests.append((path, meta, payload))
            return self.script.popleft() if self.script else self._default()

    def count_event(self) -> None:
        with self._lock:
            self.events_sent += 1


@contextmanager
def serving(fake: ScriptedServer[Any]) -> Iterator[None]:
    """Run ``fake`` for the ``with`` block; stopping wakes handlers waiting on ``stopping``."""
    fake.thread.start()
    try:
        yield
    finally:
        fake.stopping.set()
        fake.httpd.shutdown()
        fake.httpd.server_close()
        fake.thread.join(timeout=2)


class WebhookSink(ScriptedServer[int]):
    """A webhook receiver: records each JSON POST (path, headers, body) and answers it with the
    next scripted status (default 200)."""

    def __init__(self) -> None:
        super().__init__(_webhook_handler, lambda: 200)


def _webhook_handler(server: WebhookSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = server.record(self.path, dict(self.headers), json.loads(body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler

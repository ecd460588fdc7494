"""``FaultServer``: an OpenAI-compatible chat server on 127.0.0.1 whose faults a test controls
while it runs (the network-level fake of the gateway's scenario tests and ``bench/`` scripts),
and a ``/rerank`` endpoint in the Cohere, Jina and TEI shapes under the same faults (issue 15;
``rerank_replies.py``: a lexical stand-in for a cross-encoder, or a malformed body).

``POST /v1/chat/completions`` answers JSON, or server-sent events when ``"stream": true``
(``data: {chunk}`` per piece, a finish chunk, a usage chunk when
``stream_options.include_usage``, ``data: [DONE]``; chunked transfer encoding so the connection
stays alive). Usage: prompt tokens = words of the messages, completion tokens = pieces sent.

Behaviour comes from ``FaultSettings`` (see there), swapped atomically by ``set(...)``; each
request reads the settings once when it arrives. Which requests fail is drawn from a seeded
``random.Random`` under a lock, so a single-threaded client sees the same faults on every run.

Mechanics a test may rely on:

* HTTP/1.1 keep-alive and ``TCP_NODELAY``: clients reuse connections; thousands of requests a
  second on loopback.
* ``"reset"`` closes the socket with ``SO_LINGER`` 0, a real RST (``httpx.ReadError``).
* ``"hang"`` and every wait (latency, per-token delay) watch the socket: when the client hangs
  up (a timeout, a closed stream) the handler stops at once, so ``open_connections`` goes back
  to 0 without waiting for the configured latency.
* ``down=True`` resets connections as they are accepted and requests on kept-alive connections
  before they are read (the listener stays bound, so the port never changes or gets taken).
* ``stop()`` stops accepting, shuts every open socket down (waking idle and waiting handlers)
  and joins the handler threads: well under a second even with hung requests.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import replace
from typing import Any

from ragkeel.testing.faults import FaultSettings, FaultStats
from ragkeel.testing.handler import FaultHTTPServer

_JOIN_S = 0.5  # stop(): the most it waits for handler threads to finish


class FaultServer:
    """Start with ``start()`` or ``with FaultServer() as server:``; thread-safe control."""

    def __init__(self, settings: FaultSettings | None = None, *, seed: int = 0) -> None:
        self._settings = settings or FaultSettings()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._requests = 0
        self.traceparents: list[str | None] = []  # each chat request's, in arrival order
        self.rerank_requests: list[tuple[str, dict[str, Any]]] = []  # (path, body), in order
        self._outcomes: Counter[str] = Counter()
        self._streams = 0
        self._in_flight = 0
        self._refused = 0
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._httpd = FaultHTTPServer(self)
        self._serve_thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fault-server",
            daemon=True,
        )

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FaultServer:
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release every socket and thread; returns within ~0.6 s."""
        self.stopping.set()
        if self._serve_thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            sockets = list(self._sockets)
            threads = list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + _JOIN_S
        for thread in threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0.0))

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control --------------------------------------------------------------------------

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def set(self, settings: FaultSettings | None = None, /, **changes: Any) -> FaultSettings:
        """Replace the behaviour: ``set(error_rate=0.3, error="503")`` changes those fields,
        ``set(FaultSettings())`` resets everything. Returns the new settings."""
        with self._lock:
            self._settings = replace(settings or self._settings, **changes)
            return self._settings

    @property
    def stats(self) -> FaultStats:
        with self._lock:
            return FaultStats(
                requests=self._requests,
                by_outcome=dict(self._outcomes),
                streams_started=self._streams,
                in_flight=self._in_flight,
                open_connections=len(self._sockets),
                refused=self._refused,
            )

    def wait_idle(self, timeout_s: float = 2.0) -> bool:
        """Wait (bounded) until no connection is open and no request is in flight: the proof
        that clients released their connections. ``False`` if that did not happen in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            stats = self.stats
            if stats.open_connections == 0 and stats.in_flight == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def reset_stats(self) -> None:
        """Zero the counters (open connections and in-flight requests are live, not counted)."""
        with self._lock:
            self._requests = 0
            self._outcomes.clear()
            self._streams = 0
            self._refused = 0

    # -- bookkeeping, called by the handler -----------------------------------------------

    def begin(self, traceparent: str | None = None) -> tuple[FaultSettings, str | None]:
        """A request arrived: count it, keep its W3C ``traceparent`` header (``traceparents``)
        and draw its fault (``None``: answer normally)."""
        with self._lock:
            self.traceparents.append(traceparent)
            self._requests += 1
            self._in_flight += 1
            settings = self._settings
            fails = settings.error_rate > 0 and self._rng.random() < settings.error_rate
            return settings, settings.error if fails else None

    def end(self, outcome: str) -> None:
        with self._lock:
            self._in_flight -= 1
            self._outcomes[outcome] += 1

    def stream_started(self) -> None:
        with self._lock:
            self._streams += 1

    def refused(self) -> None:
        with self._lock:
            self._refused += 1

    def reranked(self, path: str, payload: dict[str, Any]) -> None:
        """A ``/rerank`` request arrived (kept in ``rerank_requests``)."""
        with self._lock:
            self.rerank_requests.append((path, payload))

    def opened(self, sock: socket.socket, thread: threading.Thread) -> None:
        with self._lock:
            self._sockets.add(sock)
            self._threads.add(thread)

    def closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def thread_done(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads.discard(thread)


__all__ = ["FaultServer", "FaultSettings", "FaultStats"]

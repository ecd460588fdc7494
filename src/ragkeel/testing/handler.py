"""The HTTP side of ``FaultServer``: the threading server that tracks sockets and threads, and
the request handler that plays one request's fault (see ``fault_server`` for the contract).

The handler knows its owner only as ``FaultOwner``, the bookkeeping calls it makes, so this
module does not import ``fault_server`` (which imports this one to serve)."""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from ragkeel.gateway.providers.scripted import split_pieces
from ragkeel.testing.faults import HTTP_ERRORS, FaultSettings
from ragkeel.testing.rerank_replies import rerank_reply

_POLL_S = 0.02  # how often a waiting handler checks for stop()
MODEL = "fault-model"


class FaultOwner(Protocol):
    """What the HTTP side needs from the server that owns it (``FaultServer`` is one): the
    current settings, the stop signal and the counters it keeps."""

    @property
    def settings(self) -> FaultSettings: ...

    @property
    def stopping(self) -> threading.Event: ...

    def begin(self, traceparent: str | None = None) -> tuple[FaultSettings, str | None]: ...

    def end(self, outcome: str) -> None: ...

    def stream_started(self) -> None: ...

    def refused(self) -> None: ...

    def reranked(self, path: str, payload: dict[str, Any]) -> None: ...

    def opened(self, sock: socket.socket, thread: threading.Thread) -> None: ...

    def closed(self, sock: socket.socket) -> None: ...

    def thread_done(self, thread: threading.Thread) -> None: ...


class FaultHTTPServer(ThreadingHTTPServer):
    """Tracks every accepted socket (``open_connections``) and handler thread (``stop``)."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, owner: FaultOwner) -> None:
        super().__init__(("127.0.0.1", 0), FaultHandler)
        self.owner = owner

    def process_request(self, request: Any, client_address: Any) -> None:
        sock: socket.socket = request
        if self.owner.settings.down:
            self.owner.refused()
            reset_socket(sock)
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        thread = threading.Thread(
            target=self._run, args=(sock, client_address), name="fault-handler", daemon=True
        )
        self.owner.opened(sock, thread)
        thread.start()

    def _run(self, sock: socket.socket, client_address: Any) -> None:
        try:
            self.process_request_thread(sock, client_address)
        finally:
            self.owner.thread_done(threading.current_thread())

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        self.owner.closed(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up mid-answer is what this server is for


class FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response has a length or is chunked
    server: FaultHTTPServer
    _open = False  # a counted request whose outcome is not recorded yet

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        owner = self.server.owner
        if owner.settings.down:
            owner.refused()
            self._reset()
            return
        payload = self._read_json()
        route = self.path.rstrip("/")
        rerank = route.endswith("/rerank")
        if not rerank and not route.endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if rerank:
            owner.reranked(self.path, payload)
        settings, fault = owner.begin(self.headers.get("traceparent"))
        self._open = True
        outcome = "client_gone"
        try:
            outcome = self._serve(settings, fault, payload, rerank)
        except OSError:
            self.close_connection = True  # the client hung up while we wrote
        finally:
            self._done(outcome)

    def _done(self, outcome: str) -> None:
        """Count the request's outcome once, *before* its last bytes go out, so a client that
        has its answer (or error) already sees it in ``stats``."""
        if self._open:
            self._open = False
            self.server.owner.end(outcome)

    # -- one request ----------------------------------------------------------------------

    def _serve(
        self, settings: FaultSettings, fault: str | None, payload: dict[str, Any], rerank: bool
    ) -> str:
        if fault == "reset":
            self._done("reset")
            self._reset()
            return "reset"
        if fault == "hang":
            self._wait(None)
            self.close_connection = True
            return "hang"
        if not self._wait(settings.base_latency_s):
            return "client_gone"
        if fault is not None:
            self._done(fault)
            self._send_error(HTTP_ERRORS[fault], settings)
            return fault
        if rerank:
            status, text = rerank_reply(self.path, payload, settings.rerank_fault)
            self._done("ok")
            self._send_body(status, text.encode())
            return "ok"
        pieces = split_pieces(settings.reply)
        prompt = sum(len(str(m.get("content", "")).split()) for m in payload.get("messages", ()))
        if payload.get("stream"):
            include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
            return self._stream(settings, pieces, prompt, include_usage)
        for _ in pieces:
            if not self._wait(settings.token_delay_s):
                return "client_gone"
        body = {
            "id": "chatcmpl-fault",
            "object": "chat.completion",
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces)},
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(prompt, len(pieces)),
        }
        self._done("ok")
        self._send_json(200, body)
        return "ok"

    def _stream(
        self, settings: FaultSettings, pieces: list[str], prompt: int, include_usage: bool
    ) -> str:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.server.owner.stream_started()
        cut = _cut(len(pieces), settings.disconnect_after)
        for i, piece in enumerate(pieces):
            if i == cut:
                self._done("disconnect")
                self._hang_up()
                return "disconnect"
            if not self._wait(settings.token_delay_s):
                return "client_gone"
            self._event(_chunk({"content": piece}, None))
        self._event(_chunk({}, "stop"))
        if include_usage:
            self._event({**_chunk({}, None), "choices": [], "usage": _usage(prompt, len(pieces))})
        self._done("ok")
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        return "ok"

    # -- writing --------------------------------------------------------------------------

    def _send_error(self, status: int, settings: FaultSettings) -> None:
        headers = {}
        if settings.retry_after_s is not None and status in (429, 503):
            headers["Retry-After"] = f"{settings.retry_after_s:g}"
        error = {"message": f"injected HTTP {status}", "type": "fault_injected", "code": status}
        self._send_json(status, {"error": error}, headers)

    def _send_json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send_body(status, json.dumps(body).encode(), headers)

    def _send_body(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _event(self, event: dict[str, Any]) -> None:
        self._write_chunk(b"data: " + json.dumps(event).encode() + b"\n\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    # -- connection -----------------------------------------------------------------------

    def _read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _wait(self, seconds: float | None) -> bool:
        """Wait ``seconds`` (``None``: forever) while the client stays connected and the server
        runs; ``False`` (and the connection marked for closing) when either ended first."""
        if seconds is not None and seconds <= 0:
            return True
        stopping = self.server.owner.stopping
        deadline = None if seconds is None else time.monotonic() + seconds
        with selectors.DefaultSelector() as selector:
            selector.register(self.connection, selectors.EVENT_READ)
            while not stopping.is_set():
                step = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
                if step <= 0:
                    return True
                if selector.select(step):
                    if _peer_closed(self.connection):
                        break
                    stopping.wait(step)  # unread bytes, not a hang-up: do not spin on them
        self.close_connection = True
        return False

    def _hang_up(self) -> None:
        """End the connection mid-answer with a FIN (an incomplete chunked body)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _reset(self) -> None:
        self.close_connection = True
        self.rfile.close()  # drop the buffered reader's reference so close() is immediate
        reset_socket(self.connection)


def reset_socket(sock: socket.socket) -> None:
    """Close ``sock`` with SO_LINGER 0: the kernel sends RST instead of FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _peer_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _cut(pieces: int, share: float | None) -> int | None:
    """Index of the first piece not sent when disconnecting after ``share`` of ``pieces``."""
    if share is None or pieces < 2:
        return None
    return min(max(int(share * pieces), 1), pieces - 1)


def _chunk(delta: dict[str, str], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }

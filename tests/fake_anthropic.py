"""A fake Anthropic Messages API server on 127.0.0.1 (``POST /v1/messages``, JSON or
server-sent events), scripted per request with ``Reply``; used by ``test_anthropic.py`` and the
chat-model contract (``test_chat_model_contract.py``)."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from fake_http import ScriptedServer

ANSWER = ["Paris", " is", " the", " capital", "."]


@dataclass
class Reply:
    """One scripted answer; an empty script answers correctly."""

    status: int = 200
    body: bytes | None = None  # raw body instead of the computed one
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the headers
    event_delay_s: float = 0.0  # between stream events
    stop_reason: str = "end_turn"
    usage: bool = True
    echo_key: bool = False
    stop: bool = True  # stream: send message_stop
    error_after: int | None = None  # stream: an error event after this many text deltas
    error_type: str = "overloaded_error"
    cut_after: int | None = None  # stream: drop the connection mid-chunk after N text deltas


class FakeAnthropicServer(ScriptedServer[Reply]):
    def __init__(self) -> None:
        super().__init__(_handler_for, Reply)

    @property
    def base_url(self) -> str:
        return self.origin + ""


def _error_body(kind: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def _stream_events(reply: Reply, model: str) -> list[dict[str, Any]]:
    usage_in = {"input_tokens": 11, "output_tokens": 1} if reply.usage else {}
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
            | {"model": model, "stop_reason": None, "usage": usage_in},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    for i, piece in enumerate(ANSWER):
        if i == reply.error_after:
            events.append(json.loads(_error_body(reply.error_type, "Overloaded")))
            return events
        events.append(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": piece},
            }
        )
    events += [
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta"}},
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 5} if reply.usage else {},
        },
    ]
    if reply.stop:
        events.append({"type": "message_stop"})
    return events


def _handler_for(server: FakeAnthropicServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            payload: dict[str, Any] = json.loads(raw) if raw else {}
            reply = server.record(self.path, headers, payload)
            if reply.delay_s and server.stopping.wait(reply.delay_s):
                return
            if self.path != "/v1/messages":
                return self._send(404, _error_body("not_found_error", "Not found"), {})
            if reply.echo_key:
                body = _error_body(
                    "authentication_error", f"invalid x-api-key {headers.get('x-api-key')}"
                )
                return self._send(reply.status, body, reply.headers)
            if reply.body is not None or reply.status != 200:
                body = reply.body or _error_body("api_error", "boom")
                return self._send(reply.status, body, reply.headers)
            if payload.get("stream"):
                return self._stream(reply, payload["model"])
            message: dict[str, Any] = {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": payload["model"],
                "content": [
                    {"type": "text", "text": "".join(ANSWER[:2])},
                    {"type": "tool_use", "id": "t1", "name": "x", "input": {}},
                    {"type": "text", "text": "".join(ANSWER[2:])},
                ],
                "stop_reason": reply.stop_reason,
                "stop_sequence": None,
            }
            if reply.usage:
                message["usage"] = {"input_tokens": 11, "output_tokens": 5}
            self._send(200, json.dumps(message).encode(), reply.headers)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stream(self, reply: Reply, model: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            chunked = reply.cut_after is not None
            self.send_header(
                "Transfer-Encoding" if chunked else "Connection", "chunked" if chunked else "close"
            )
            self.end_headers()
            self.close_connection = True
            deltas = 0
            try:
                for event in _stream_events(reply, model):
                    if reply.event_delay_s and server.stopping.wait(reply.event_delay_s):
                        return
                    if event["type"] == "content_block_delta" and deltas == reply.cut_after:
                        self.wfile.write(b"ff\r\nevent: content_bl")  # a chunk cut short
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    deltas += event["type"] == "content_block_delta"
                    data = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                    self.wfile.flush()
                    server.count_event()
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                server.disconnected.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler

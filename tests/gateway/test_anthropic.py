"""``AnthropicChatModel`` against a real fake Anthropic Messages API server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from fake_http import ScriptedServer, serving
from ragkeel.gateway.base import ChatChunk, ChatMessage, ChatRequest, Usage
from ragkeel.gateway.errors import (
    ChatModelError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
    StreamInterruptedError,
)
from ragkeel.gateway.providers.anthropic import AnthropicChatModel

KEY = "sk-ant-test-SECRET-0123456789"
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


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    fake = FakeAnthropicServer()
    with serving(fake):
        yield fake


@pytest.fixture
def model(server: FakeAnthropicServer) -> Iterator[AnthropicChatModel]:
    with AnthropicChatModel(server.base_url, "claude-test", api_key=KEY, timeout_s=5) as m:
        yield m


def _request(**kwargs: Any) -> ChatRequest:
    messages = (
        ChatMessage("system", "Answer briefly."),
        ChatMessage("user", "Capital of France?"),
        ChatMessage("assistant", "Which France?"),
        ChatMessage("system", "Cite sources."),
        ChatMessage("user", "The country."),
    )
    return ChatRequest(messages, **kwargs)


def _call(model: AnthropicChatModel, streaming: bool, **kwargs: Any) -> None:
    if streaming:
        list(model.stream(_request(**kwargs)))
    else:
        model.complete(_request(**kwargs))


# -- success ------------------------------------------------------------------------------


def test_complete_maps_request_and_response(
    server: FakeAnthropicServer, model: AnthropicChatModel
) -> None:
    response = model.complete(_request(max_tokens=32, temperature=0.2, stop=("\n\n",)))
    assert response.text == "Paris is the capital."
    assert response.usage == Usage(11, 5)
    assert response.finish_reason == "stop"
    assert response.model == "claude-test"
    path, headers, payload = server.requests[0]
    assert path == "/v1/messages"
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    assert payload == {
        "model": "claude-test",
        "system": "Answer briefly.\n\nCite sources.",
        "messages": [
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Which France?"},
            {"role": "user", "content": "The country."},
        ],
        "max_tokens": 32,
        "temperature": 0.2,
        "stop_sequences": ["\n\n"],
    }


def test_complete_max_tokens_is_length_and_usage_is_estimated(
    server: FakeAnthropicServer, model: AnthropicChatModel
) -> None:
    server.then(Reply(stop_reason="max_tokens", usage=False))
    response = model.complete(ChatRequest((ChatMessage("user", "Capital of France?"),)))
    assert response.finish_reason == "length"
    assert response.usage == Usage(
        model.count_tokens("Capital of France?"), model.count_tokens("Paris is the capital.")
    )
    payload = server.requests[0][2]
    assert "system" not in payload and "stop_sequences" not in payload


def test_name_version_override_and_no_key(server: FakeAnthropicServer) -> None:
    with AnthropicChatModel(
        server.base_url + "/", "m", api_key=None, name="claude:m", anthropic_version="2099-01-01"
    ) as m:
        assert m.name == "claude:m"
        assert m.complete(_request()).model == "claude:m"
    headers = server.requests[0][1]
    assert "x-api-key" not in headers
    assert headers["anthropic-version"] == "2099-01-01"


def test_stream_order_and_usage(server: FakeAnthropicServer, model: AnthropicChatModel) -> None:
    chunks = list(model.stream(_request()))
    assert [c.text_delta for c in chunks] == [*ANSWER, ""]
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    assert chunks[-1] == ChatChunk("", "stop", Usage(11, 5))
    assert server.requests[0][2]["stream"] is True


def test_stream_max_tokens_and_estimated_usage(
    server: FakeAnthropicServer, model: AnthropicChatModel
) -> None:
    server.then(Reply(stop_reason="max_tokens", usage=False))
    last = list(model.stream(_request()))[-1]
    assert last.finish_reason == "length"
    assert last.usage is not None
    assert last.usage.completion_tokens == model.count_tokens("".join(ANSWER))
    assert last.usage.prompt_tokens > 0


def test_stream_is_lazy(server: FakeAnthropicServer, model: AnthropicChatModel) -> None:
    iterator = model.stream(_request())
    assert server.requests == []
    assert next(iterator).text_delta == "Paris"
    iterator.close()


def test_stream_close_midway_closes_response(
    server: FakeAnthropicServer, model: AnthropicChatModel
) -> None:
    server.then(Reply(event_delay_s=0.05))
    iterator = model.stream(_request())
    assert next(iterator).text_delta == "Paris"
    iterator.close()
    assert server.disconnected.wait(3), "the server never saw the client hang up"
    assert server.events_sent < len(_stream_events(Reply(), "m"))
    assert model.complete(_request()).text == "Paris is the capital."  # the pool still works


# -- broken streams -----------------------------------------------------------------------


def test_stream_without_message_stop_is_interrupted(
    server: FakeAnthropicServer, model: AnthropicChatModel
) -> None:
    server.then(Reply(stop=False))
    with pytest.raises(StreamInterruptedError, match="message_stop") as info:
        list(model.stream(_request()))
    assert info.value.partial == "".join(ANSWER)
    assert info.value.provider == "anthropic"


def test_mid_stream_error_event_is_interrupted_with_partial(
    server: FakeAnthropicServer, model: AnthropicChatModel
) -> None:
    server.then(Reply(error_after=2))
    received: list[str] = []
    with pytest.raises(StreamInterruptedError, match="overloaded_error: Overloaded") as info:
        for chunk in model.stream(_request()):
            received.append(chunk.text_delta)
    assert received == ANSWER[:2]
    assert info.value.partial == "Paris is"
    assert not info.value.retryable  # fallback decides: continue or error


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("overloaded_error", ModelUnavailableError),
        ("api_error", ModelUnavailableError),
        ("rate_limit_error", ModelRateLimitedError),
        ("invalid_request_error", ModelRequestError),
        ("some_new_error", ModelUnavailableError),
    ],
)
def test_error_event_before_text_is_typed(
    server: FakeAnthropicServer,
    model: AnthropicChatModel,
    error_type: str,
    expected: type[ChatModelError],
) -> None:
    server.then(Reply(error_after=0, error_type=error_type))
    with pytest.raises(ChatModelError, match=error_type) as info:
        list(model.stream(_request()))
    assert type(info.value) is expected
    assert info.value.provider == "anthropic"


def test_connection_drop_mid_stream_is_interrupted(
    server: FakeAnthropicServer, model: AnthropicChatModel
) -> None:
    server.then(Reply(cut_after=3))
    with pytest.raises(StreamInterruptedError) as info:
        list(model.stream(_request()))
    assert info.value.partial == "Paris is the"
    assert KEY not in str(info.value)


def test_connection_drop_before_text_is_unavailable(
    server: FakeAnthropicServer, model: AnthropicChatModel
) -> None:
    server.then(Reply(cut_after=0))
    with pytest.raises(ModelUnavailableError) as info:
        list(model.stream(_request()))
    assert type(info.value) is ModelUnavailableError
    assert info.value.retryable


# -- HTTP errors --------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("status", [500, 529])
def test_5xx_and_overloaded_are_unavailable(
    server: FakeAnthropicServer, model: AnthropicChatModel, streaming: bool, status: int
) -> None:
    server.then(
        Reply(
            status=status,
            body=_error_body("overloaded_error", "Overloaded"),
            headers={"retry-after": "3"},
        )
    )
    with pytest.raises(
        ModelUnavailableError, match=rf"HTTP {status}: overloaded_error: Overloaded"
    ) as info:
        _call(model, streaming)
    assert type(info.value) is ModelUnavailableError
    assert info.value.retryable and info.value.counts_as_failure
    assert info.value.status == status
    assert info.value.retry_after_s == 3.0
    assert info.value.provider == "anthropic"
    assert info.value.model == "claude-test"


@pytest.mark.parametrize("streaming", [False, True])
def test_429_is_rate_limited_with_retry_after(
    server: FakeAnthropicServer, model: AnthropicChatModel, streaming: bool
) -> None:
    server.then(
        Reply(
            status=429,
            body=_error_body("rate_limit_error", "slow down"),
            headers={"retry-after": "7"},
        )
    )
    with pytest.raises(ModelRateLimitedError, match="HTTP 429") as info:
        _call(model, streaming)
    assert info.value.retry_after_s == 7.0
    assert info.value.status == 429


@pytest.mark.parametrize("streaming", [False, True])
def test_401_is_rejected_and_key_redacted(
    server: FakeAnthropicServer, model: AnthropicChatModel, streaming: bool
) -> None:
    server.then(Reply(status=401, echo_key=True))
    with pytest.raises(ChatModelError, match="HTTP 401: authentication_error") as info:
        _call(model, streaming)
    assert type(info.value) is ModelRequestError and info.value.status == 401
    assert not info.value.retryable and not info.value.counts_as_failure
    assert KEY not in str(info.value)
    assert "***" in str(info.value)
    assert info.value.hint is not None and "API key" in info.value.hint


def test_400_quotes_the_api_message(server: FakeAnthropicServer, model: AnthropicChatModel) -> None:
    server.then(Reply(status=400, body=_error_body("invalid_request_error", "temperature: > 1")))
    with pytest.raises(ModelRequestError, match="invalid_request_error: temperature: > 1") as info:
        model.complete(_request())
    assert info.value.status == 400


def test_404_is_rejected(server: FakeAnthropicServer) -> None:
    with (
        AnthropicChatModel(server.base_url + "/v1", "m", api_key=KEY) as m,
        pytest.raises(ModelRequestError, match="HTTP 404: not_found_error") as info,
    ):
        m.complete(_request())
    assert info.value.status == 404
    assert info.value.hint is not None and "without /v1" in info.value.hint


@pytest.mark.parametrize("streaming", [False, True])
def test_malformed_json(
    server: FakeAnthropicServer, model: AnthropicChatModel, streaming: bool
) -> None:
    server.then(Reply(body=b"data: {not json\n\n" if streaming else b"{not json"))
    with pytest.raises(ChatModelError, match="invalid JSON") as info:
        _call(model, streaming)
    assert type(info.value) is ChatModelError


def test_missing_content(server: FakeAnthropicServer, model: AnthropicChatModel) -> None:
    server.then(Reply(body=b'{"type": "message", "stop_reason": "end_turn"}'))
    with pytest.raises(ChatModelError, match=r"content\[\]"):
        model.complete(_request())


# -- timeouts and transport ---------------------------------------------------------------


@pytest.mark.parametrize("streaming", [False, True])
def test_slow_server_times_out(
    server: FakeAnthropicServer, model: AnthropicChatModel, streaming: bool
) -> None:
    server.then(Reply(delay_s=3))
    started = time.monotonic()
    with pytest.raises(ModelTimeoutError) as info:
        _call(model, streaming, timeout_s=0.3)
    assert time.monotonic() - started < 2
    assert info.value.timeout_s == 0.3
    assert info.value.retryable
    assert info.value.provider == "anthropic"


def test_trickling_stream_times_out(server: FakeAnthropicServer, model: AnthropicChatModel) -> None:
    server.then(Reply(event_delay_s=0.1))  # each event in time, the whole answer too slow
    started = time.monotonic()
    with pytest.raises(ModelTimeoutError):
        list(model.stream(_request(timeout_s=0.4)))
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("streaming", [False, True])
def test_connect_error_is_unavailable(streaming: bool) -> None:
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()  # a port that was just free: nothing listens there
    with (
        AnthropicChatModel(f"http://127.0.0.1:{port}", "m", api_key=KEY) as m,
        pytest.raises(ModelUnavailableError, match="request failed") as info,
    ):
        _call(m, streaming)
    assert KEY not in str(info.value)


def test_transport_errors_are_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"boom {request.headers['x-api-key']}")

    with (
        AnthropicChatModel(
            "http://example.invalid", "m", api_key=KEY, transport=httpx.MockTransport(handler)
        ) as m,
        pytest.raises(ModelUnavailableError) as info,
    ):
        m.complete(_request())
    assert KEY not in str(info.value)
    assert "***" in str(info.value)


def test_count_tokens_is_approximate(model: AnthropicChatModel) -> None:
    assert model.count_tokens("") == 0
    assert model.count_tokens("Paris is the capital.") == 5


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        AnthropicChatModel(model="m", api_key=None, timeout_s=0)
    with pytest.raises(ValueError, match="model is required"):
        AnthropicChatModel(api_key=None)

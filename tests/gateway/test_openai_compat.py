"""``OpenAICompatChatModel`` against a real fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from fake_http import ScriptedServer, serving
from ragkeel.errors import (
    ChatModelError,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from ragkeel.gateway.base import ChatChunk, ChatMessage, ChatRequest, Usage
from ragkeel.gateway.providers.openai_compat import OpenAICompatChatModel

KEY = "sk-test-SECRET-0123456789"
ANSWER = ["Paris", " is", " the", " capital", "."]


@dataclass
class Reply:
    """One scripted answer; an empty script answers correctly."""

    status: int = 200
    body: bytes | None = None  # raw body instead of the computed one
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the headers
    event_delay_s: float = 0.0  # between stream events
    finish_reason: str = "stop"
    usage: bool = True  # include usage (stream: in a last event)
    echo_auth: bool = False
    done: bool = True  # stream: send data: [DONE]


class FakeChatServer(ScriptedServer[Reply]):
    def __init__(self) -> None:
        super().__init__(_handler_for, Reply)

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"


def _usage_json(reply: Reply) -> dict[str, int] | None:
    return (
        {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16} if reply.usage else None
    )


def _handler_for(server: FakeChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            auth = self.headers.get("Authorization")
            payload = json.loads(raw) if raw else None
            reply = server.record(self.path, auth, payload)
            if reply.delay_s and server.stopping.wait(reply.delay_s):
                return
            if self.path != "/v1/chat/completions":
                return self._send(404, b'{"error": "not found"}', {})
            if reply.echo_auth:
                body = json.dumps({"error": f"bad key in header {auth}"}).encode()
                return self._send(reply.status, body, reply.headers)
            if reply.body is not None or reply.status != 200:
                return self._send(reply.status, reply.body or b'{"error":"x"}', reply.headers)
            if payload.get("stream"):
                return self._stream(reply)
            body = {
                "id": "c1",
                "object": "chat.completion",
                "model": payload["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(ANSWER)},
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": _usage_json(reply),
            }
            self._send(200, json.dumps(body).encode(), reply.headers)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stream(self, reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            events: list[dict[str, Any]] = [
                {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}
            ]
            events += [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in ANSWER]
            events.append(
                {"choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]}
            )
            if reply.usage:
                events.append({"choices": [], "usage": _usage_json(reply)})
            lines = [b": keep-alive\n\n"]
            lines += [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events]
            if reply.done:
                lines.append(b"data: [DONE]\n\n")
            try:
                for line in lines:
                    if reply.event_delay_s and server.stopping.wait(reply.event_delay_s):
                        return
                    self.wfile.write(line)
                    self.wfile.flush()
                    server.count_event()
            except (BrokenPipeError, ConnectionResetError):
                server.disconnected.set()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[FakeChatServer]:
    fake = FakeChatServer()
    with serving(fake):
        yield fake


@pytest.fixture
def model(server: FakeChatServer) -> Iterator[OpenAICompatChatModel]:
    with OpenAICompatChatModel(server.base_url, "gpt-test", api_key=KEY, timeout_s=5) as m:
        yield m


def _request(**kwargs: Any) -> ChatRequest:
    messages = (ChatMessage("system", "Answer briefly."), ChatMessage("user", "Capital of France?"))
    return ChatRequest(messages, **kwargs)


def test_complete(server: FakeChatServer, model: OpenAICompatChatModel) -> None:
    response = model.complete(_request(max_tokens=32, temperature=0.2, stop=("\n\n",)))
    assert response.text == "Paris is the capital."
    assert response.usage == Usage(11, 5)
    assert response.finish_reason == "stop"
    assert response.model == "gpt-test"
    path, auth, payload = server.requests[0]
    assert path == "/v1/chat/completions"
    assert auth == f"Bearer {KEY}"
    assert payload == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Capital of France?"},
        ],
        "max_tokens": 32,
        "temperature": 0.2,
        "stop": ["\n\n"],
    }


def test_complete_length_and_estimated_usage(
    server: FakeChatServer, model: OpenAICompatChatModel
) -> None:
    server.then(Reply(finish_reason="length", usage=False))
    response = model.complete(_request())
    assert response.finish_reason == "length"
    assert response.usage.completion_tokens == model.count_tokens("Paris is the capital.")
    assert response.usage.prompt_tokens > 0
    assert "stop" not in server.requests[0][2]


def test_name_override_and_no_key(server: FakeChatServer) -> None:
    with OpenAICompatChatModel(server.base_url + "/", "m", api_key=None, name="remote:m") as m:
        assert m.name == "remote:m"
        assert m.complete(_request()).model == "remote:m"
    assert server.requests[0][1] is None


def test_stream_order_and_usage(server: FakeChatServer, model: OpenAICompatChatModel) -> None:
    chunks = list(model.stream(_request()))
    assert [c.text_delta for c in chunks] == [*ANSWER, ""]
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    assert chunks[-1] == ChatChunk("", "stop", Usage(11, 5))
    payload = server.requests[0][2]
    assert payload["stream"] is True
    assert payload["stream_options"] == {"include_usage": True}


def test_stream_without_usage_estimates(
    server: FakeChatServer, model: OpenAICompatChatModel
) -> None:
    server.then(Reply(usage=False, finish_reason="length"))
    last = list(model.stream(_request()))[-1]
    assert last.finish_reason == "length"
    assert last.usage is not None
    assert last.usage.completion_tokens == model.count_tokens("".join(ANSWER))


def test_stream_is_lazy(server: FakeChatServer, model: OpenAICompatChatModel) -> None:
    iterator = model.stream(_request())
    assert server.requests == []
    assert next(iterator).text_delta == "Paris"
    iterator.close()


def test_stream_close_midway_closes_response(
    server: FakeChatServer, model: OpenAICompatChatModel
) -> None:
    server.then(Reply(event_delay_s=0.05))
    iterator = model.stream(_request())
    assert next(iterator).text_delta == "Paris"
    iterator.close()
    assert server.disconnected.wait(3), "the server never saw the client hang up"
    assert server.events_sent < len(ANSWER) + 4
    # the client still works after a cancelled stream
    assert model.complete(_request()).text == "Paris is the capital."


def test_stream_without_done_is_unavailable(
    server: FakeChatServer, model: OpenAICompatChatModel
) -> None:
    server.then(Reply(done=False))
    with pytest.raises(ModelUnavailableError, match=r"\[DONE\]"):
        list(model.stream(_request()))


@pytest.mark.parametrize("streaming", [False, True])
def test_500_is_unavailable(
    server: FakeChatServer, model: OpenAICompatChatModel, streaming: bool
) -> None:
    server.then(Reply(status=503, body=b'{"error": "overloaded"}'))
    with pytest.raises(ModelUnavailableError, match=r"HTTP 503.*overloaded") as info:
        _call(model, streaming)
    assert info.value.retryable
    assert info.value.retry_after_s is None
    assert info.value.model == "gpt-test"


@pytest.mark.parametrize("streaming", [False, True])
def test_429_carries_retry_after(
    server: FakeChatServer, model: OpenAICompatChatModel, streaming: bool
) -> None:
    server.then(Reply(status=429, headers={"Retry-After": "7"}))
    with pytest.raises(ModelUnavailableError, match="HTTP 429") as info:
        _call(model, streaming)
    assert info.value.retry_after_s == 7.0


def test_429_with_http_date_retry_after(
    server: FakeChatServer, model: OpenAICompatChatModel
) -> None:
    server.then(Reply(status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    with pytest.raises(ModelUnavailableError) as info:
        model.complete(_request())
    assert info.value.retry_after_s is None


@pytest.mark.parametrize("streaming", [False, True])
def test_401_is_model_error_without_key(
    server: FakeChatServer, model: OpenAICompatChatModel, streaming: bool
) -> None:
    server.then(Reply(status=401, echo_auth=True))
    with pytest.raises(ChatModelError, match="HTTP 401") as info:
        _call(model, streaming)
    assert type(info.value) is ModelRequestError and info.value.status == 401
    assert not info.value.retryable and not info.value.counts_as_failure
    assert not info.value.retryable
    assert KEY not in str(info.value)
    assert "***" in str(info.value)
    assert info.value.hint is not None and "API key" in info.value.hint


def test_404_is_model_error(server: FakeChatServer) -> None:
    with (
        OpenAICompatChatModel(server.base_url + "/nope", "m", api_key=KEY) as m,
        pytest.raises(ChatModelError, match="HTTP 404") as info,
    ):
        m.complete(_request())
    assert type(info.value) is ModelRequestError and info.value.status == 404
    assert not info.value.retryable and not info.value.counts_as_failure


@pytest.mark.parametrize("streaming", [False, True])
def test_malformed_json(
    server: FakeChatServer, model: OpenAICompatChatModel, streaming: bool
) -> None:
    if streaming:
        # a 200 text/event-stream whose event is not JSON
        server.then(Reply(status=200, body=b"data: {not json\n\n"))
    else:
        server.then(Reply(status=200, body=b"{not json"))
    with pytest.raises(ChatModelError, match="invalid JSON") as info:
        _call(model, streaming)
    assert type(info.value) is ChatModelError


def test_missing_choices(server: FakeChatServer, model: OpenAICompatChatModel) -> None:
    server.then(Reply(status=200, body=b'{"choices": []}'))
    with pytest.raises(ChatModelError, match=r"choices\[0\]"):
        model.complete(_request())


@pytest.mark.parametrize("streaming", [False, True])
def test_slow_server_times_out(
    server: FakeChatServer, model: OpenAICompatChatModel, streaming: bool
) -> None:
    server.then(Reply(delay_s=3))
    started = time.monotonic()
    with pytest.raises(ModelTimeoutError) as info:
        _call(model, streaming, timeout_s=0.3)
    assert time.monotonic() - started < 2
    assert info.value.timeout_s == 0.3
    assert info.value.retryable


def test_trickling_stream_times_out(server: FakeChatServer, model: OpenAICompatChatModel) -> None:
    server.then(Reply(event_delay_s=0.15))  # each event in time, the whole answer too slow
    with pytest.raises(ModelTimeoutError):
        list(model.stream(_request(timeout_s=0.5)))


@pytest.mark.parametrize("streaming", [False, True])
def test_connect_error_is_unavailable(streaming: bool) -> None:
    # a port that was just free: nothing listens there
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()
    with (
        OpenAICompatChatModel(f"http://127.0.0.1:{port}/v1", "m", api_key=KEY) as m,
        pytest.raises(ModelUnavailableError, match="request failed") as info,
    ):
        _call(m, streaming)
    assert KEY not in str(info.value)


def test_transport_errors_are_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"boom {request.headers['Authorization']}")

    with (
        OpenAICompatChatModel(
            "http://example.invalid/v1", "m", api_key=KEY, transport=httpx.MockTransport(handler)
        ) as m,
        pytest.raises(ModelUnavailableError) as info,
    ):
        m.complete(_request())
    assert KEY not in str(info.value)
    assert "***" in str(info.value)


def test_count_tokens_is_approximate(model: OpenAICompatChatModel) -> None:
    assert model.count_tokens("") == 0
    assert model.count_tokens("Paris is the capital.") == 5


def test_rejects_bad_timeout() -> None:
    with pytest.raises(ValueError):
        OpenAICompatChatModel("http://127.0.0.1:1/v1", "m", api_key=None, timeout_s=0)


def _call(model: OpenAICompatChatModel, streaming: bool, **kwargs: Any) -> None:
    if streaming:
        list(model.stream(_request(**kwargs)))
    else:
        model.complete(_request(**kwargs))


def test_a_json_schema_becomes_response_format(
    server: FakeChatServer, model: OpenAICompatChatModel
) -> None:
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
    model.complete(_request(json_schema=schema))
    assert server.requests[0][2]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema},
    }
    model.complete(_request())
    assert "response_format" not in server.requests[1][2]

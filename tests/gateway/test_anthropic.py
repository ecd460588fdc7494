"""``AnthropicChatModel`` against a real fake Anthropic Messages API server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from fake_anthropic import ANSWER, FakeAnthropicServer, Reply, _error_body, _stream_events
from fake_http import serving
from ragkeel.errors import (
    ChatModelError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
    StreamInterruptedError,
)
from ragkeel.gateway.base import ChatChunk, ChatMessage, ChatRequest, Usage
from ragkeel.gateway.providers.anthropic import AnthropicChatModel

KEY = "sk-ant-test-SECRET-0123456789"


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

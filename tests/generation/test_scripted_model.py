"""The scripted fake honours the ChatModel contract: streaming, usage, limits, failures."""

from __future__ import annotations

import pytest

from ragkeel.errors import ChatModelError, ModelTimeoutError, ModelUnavailableError
from ragkeel.gateway.base import ChatMessage, ChatModel, ChatRequest
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure, split_pieces

REQUEST = ChatRequest((ChatMessage("system", "Be brief."), ChatMessage("user", "Hi there?")))


def test_is_a_chat_model_and_streams_pieces_that_join_to_the_reply() -> None:
    model: ChatModel = ScriptedChatModel(["Hello, world [1]."])
    chunks = list(model.stream(REQUEST))
    assert "".join(c.text_delta for c in chunks) == "Hello, world [1]."
    assert [c.text_delta for c in chunks[:3]] == ["Hello", ",", " world"]
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.finish_reason == "stop" and last.usage is not None
    assert last.usage.prompt_tokens == model.count_tokens("Be brief.") + model.count_tokens(
        "Hi there?"
    )
    assert last.usage.completion_tokens == len(chunks)


def test_script_list_advances_then_repeats_and_requests_are_recorded() -> None:
    model = ScriptedChatModel(["one", "two"])
    texts = [model.complete(REQUEST).text for _ in range(3)]
    assert texts == ["one", "two", "two"]
    assert model.calls == 3 and model.requests[0] is REQUEST


def test_function_script_sees_the_request() -> None:
    model = ScriptedChatModel(lambda r: r.messages[-1].content.upper(), name="echo")
    response = model.complete(REQUEST)
    assert (response.text, response.model) == ("HI THERE?", "echo")


def test_max_tokens_and_stop_sequences() -> None:
    model = ScriptedChatModel(["a b c d e. STOP more"])
    short = model.complete(ChatRequest(REQUEST.messages, max_tokens=2))
    assert (short.text, short.finish_reason, short.usage.completion_tokens) == ("a b", "length", 2)
    stopped = model.complete(ChatRequest(REQUEST.messages, stop=(" STOP",)))
    assert (stopped.text, stopped.finish_reason) == ("a b c d e.", "stop")


def test_empty_reply_still_ends_with_usage() -> None:
    chunks = list(ScriptedChatModel([""]).stream(REQUEST))
    assert len(chunks) == 1 and chunks[0].finish_reason == "stop" and chunks[0].usage


@pytest.mark.parametrize(
    ("kind", "error", "code"),
    [
        ("timeout", ModelTimeoutError, "MODEL_TIMEOUT"),
        ("unavailable", ModelUnavailableError, "MODEL_UNAVAILABLE"),
        ("error", ChatModelError, "MODEL_ERROR"),
    ],
)
def test_failures_before_the_first_token(kind: str, error: type[ChatModelError], code: str) -> None:
    model = ScriptedChatModel([ScriptedFailure(kind)])  # type: ignore[arg-type]
    stream = model.stream(REQUEST)
    with pytest.raises(error) as info:
        next(stream)
    assert info.value.code == code and info.value.model == "scripted"
    assert model.calls == 1


def test_failure_mid_stream_after_some_tokens() -> None:
    model = ScriptedChatModel([ScriptedFailure("timeout", after_tokens=2, partial="one two three")])
    received: list[str] = []
    with pytest.raises(ModelTimeoutError):
        for chunk in model.stream(REQUEST):
            received.append(chunk.text_delta)
    assert received == ["one", " two"]


def test_token_delay_runs_into_the_request_timeout() -> None:
    model = ScriptedChatModel(["a b c d e f g h"], token_delay_s=0.01)
    with pytest.raises(ModelTimeoutError) as info:
        model.complete(ChatRequest(REQUEST.messages, timeout_s=0.025))
    assert info.value.timeout_s == 0.025
    assert model.complete(ChatRequest(REQUEST.messages, timeout_s=5)).text == "a b c d e f g h"


def test_delay_is_bounded_and_script_not_empty() -> None:
    with pytest.raises(ValueError):
        ScriptedChatModel(token_delay_s=2.0)
    with pytest.raises(ValueError):
        ScriptedChatModel([])


@pytest.mark.parametrize("text", ["", " ", "a", "Hello, world!  ", "  lead\nline [1][2]."])
def test_split_pieces_round_trips(text: str) -> None:
    assert "".join(split_pieces(text)) == text


def test_request_validation() -> None:
    with pytest.raises(ValueError):
        ChatRequest(())
    with pytest.raises(ValueError):
        ChatRequest(REQUEST.messages, max_tokens=0)
    with pytest.raises(ValueError):
        ChatRequest(REQUEST.messages, timeout_s=0)


def test_closing_a_stream_early_counts_as_cancelled() -> None:
    model = ScriptedChatModel(["one two three"])
    stream = model.stream(REQUEST)
    next(stream)
    stream.close()
    list(model.stream(REQUEST))
    assert model.cancelled == 1

"""The chat-model contract: what every ``ChatModel`` provider (``gateway/base.py``) must do —
scripted, OpenAI-compatible, Anthropic and local today. The policies (retry, breaker,
fallback...) and the answer flow rely on exactly this, whatever the provider.

* ``complete`` returns the answer with its ``usage`` (prompt and completion tokens), a
  ``finish_reason`` and the model's name.
* ``stream`` yields chunks whose ``text_delta``s join to the answer; only the last chunk has a
  ``finish_reason`` and it carries the call's ``usage``. At temperature 0 a stream and a
  completion of the same request agree.
* ``count_tokens`` counts: positive for text, more for more text.
* Closing a stream after its first chunk stops the call: within 1 s the backend holds no
  connection or generation slot (a backend's healthy answer must take longer than that, so a
  stream that was not stopped shows), and the same model answers the next request.
* Failures are raised as the error tree's chat model section (``ragkeel/errors.py``), from ``complete`` and
  from ``stream`` alike, each naming the model:
  ``unavailable`` (5xx) → ``ModelUnavailableError``; ``rate_limited`` (429 with
  ``Retry-After: 2``) → ``ModelRateLimitedError`` with ``retry_after_s`` 2; ``rejected``
  (400) → ``ModelRequestError``, not retryable; ``slow`` (no answer for 5 s or more) →
  ``ModelTimeoutError`` under a 0.2 s ``timeout_s``; ``interrupted`` (the stream breaks after
  some text) → a ``ModelUnavailableError`` after at least one chunk.

A backend subclasses ``ChatModelContract`` as ``Test...`` and overrides one fixture,
``backend``: a ``ChatBackend`` that builds the model under test, healthy or showing one of the
``FAULTS`` (``pytest.skip`` with a reason for a fault the backend cannot be made to show, e.g.
the local model has no 429), and says whether the backend is idle again::

    class TestScriptedChatModel(ChatModelContract):
        @pytest.fixture
        def backend(self) -> ChatBackend:
            return ScriptedBackend()

The suite reads no gateway bookkeeping (call logs, metering): only the protocol. Needs pytest
(the ``dev`` extra).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal, Protocol, TypeVar, get_args

import pytest

from ragkeel.errors import (
    ChatModelError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from ragkeel.gateway.base import ChatChunk, ChatMessage, ChatModel, ChatRequest, ChatStream

Fault = Literal["unavailable", "rate_limited", "rejected", "slow", "interrupted"]
FAULTS: tuple[Fault, ...] = get_args(Fault)
RETRY_AFTER_S = 2.0  # what a ``rate_limited`` backend sends as Retry-After
SLOW_S = 5.0  # a ``slow`` backend sends nothing (or not all) for at least this long
TIMEOUT_S = 0.2  # the attempt timeout the suite gives a ``slow`` backend
BOUND_S = 60.0  # a step that takes longer is a wedged model (a hang guard, not a latency check)
RELEASE_S = 1.0  # a stream closed early frees the backend within this (a full answer takes longer)

SOURCES = (
    "[1] Production API keys must be rotated every 90 days.\n\n"
    "Question: How often must production API keys be rotated?"
)
LONG_ASK = "Write a long essay about rivers, their sources and their deltas. " + SOURCES

T = TypeVar("T")


class ChatBackend(Protocol):
    """A backend under test: builds its model and reports whether it is idle."""

    def model(self, fault: Fault | None = None) -> ChatModel:
        """A model whose every call shows ``fault`` (``None``: answers normally). Models built
        here are closed by the backend at the end of the test."""
        ...

    def released(self) -> bool:
        """No call is generating or holding a connection any more (asked, repeatedly for a
        while, after a stream was closed early)."""
        ...


def ask(text: str = SOURCES, **kwargs: object) -> ChatRequest:
    return ChatRequest(
        (
            ChatMessage("system", "Answer from the sources only and cite them as [n]."),
            ChatMessage("user", text),
        ),
        **kwargs,  # type: ignore[arg-type]
    )


def close_stream(stream: ChatStream) -> None:
    """Close a stream the consumer leaves early (``ChatModel.stream`` returns a ``ChatStream``,
    closable by type)."""
    stream.close()


def eventually(check: Callable[[], bool], within_s: float = 2.0) -> bool:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def bounded(fn: Callable[[], T], within_s: float = BOUND_S) -> T:
    """``fn()`` in a thread; fails the test (instead of hanging it) if it does not return."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:  # handed to the test thread below
            error.append(exc)

    thread = threading.Thread(target=run, name="contract-call", daemon=True)
    thread.start()
    thread.join(within_s)
    if thread.is_alive():
        pytest.fail(f"the call did not return within {within_s:g} s (a wedged model?)")
    if error:
        raise error[0]
    return result[0]


def call(model: ChatModel, request: ChatRequest, streaming: bool) -> str:
    """The answer's text, by ``stream`` or by ``complete``."""
    if streaming:
        return "".join(c.text_delta for c in model.stream(request))
    return model.complete(request).text


class ChatModelContract:
    @pytest.fixture
    def backend(self) -> ChatBackend:
        raise NotImplementedError("override the backend fixture: the ChatBackend under test")

    # -- answers ----------------------------------------------------------------------------

    def test_complete_returns_text_usage_and_finish(self, backend: ChatBackend) -> None:
        model = backend.model()
        response = bounded(lambda: model.complete(ask(max_tokens=24)))
        assert response.text.strip()
        assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
        assert response.finish_reason in ("stop", "length")
        assert isinstance(response.model, str) and response.model

    def test_stream_joins_to_the_answer_with_usage_on_the_last_chunk(
        self, backend: ChatBackend
    ) -> None:
        model = backend.model()
        chunks = bounded(lambda: list(model.stream(ask(max_tokens=24))))
        assert chunks and "".join(c.text_delta for c in chunks).strip()
        *body, last = chunks
        assert all(c.finish_reason is None and c.usage is None for c in body)
        assert last.finish_reason in ("stop", "length")
        assert last.usage is not None
        assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0

    def test_stream_and_complete_agree(self, backend: ChatBackend) -> None:
        model = backend.model()
        request = ask(max_tokens=24, temperature=0.0)
        response = bounded(lambda: model.complete(request))
        chunks = bounded(lambda: list(model.stream(request)))
        assert "".join(c.text_delta for c in chunks) == response.text
        assert chunks[-1].usage == response.usage
        assert chunks[-1].finish_reason == response.finish_reason

    def test_name_and_token_counts(self, backend: ChatBackend) -> None:
        model = backend.model()
        assert isinstance(model.name, str) and model.name
        short = model.count_tokens("hello world")
        longer = model.count_tokens("hello world, and a much longer sentence after it")
        assert isinstance(short, int) and 0 < short < longer

    # -- closing early ------------------------------------------------------------------------

    def test_closing_a_stream_early_releases_it(self, backend: ChatBackend) -> None:
        model = backend.model()
        stream = model.stream(ask(LONG_ASK, max_tokens=200))
        first = bounded(lambda: next(stream))
        assert first.finish_reason is None  # the answer was still going
        close_stream(stream)
        assert eventually(backend.released, RELEASE_S), "a closed stream still holds the backend"
        assert bounded(lambda: model.complete(ask(max_tokens=16)).text.strip())

    # -- errors -------------------------------------------------------------------------------

    @pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
    def test_unavailable_is_model_unavailable(self, backend: ChatBackend, streaming: bool) -> None:
        model = backend.model("unavailable")
        with pytest.raises(ModelUnavailableError) as caught:
            bounded(lambda: call(model, ask(), streaming))
        assert caught.value.retryable and not isinstance(caught.value, ModelRateLimitedError)
        _names_the_model(caught.value)

    @pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
    def test_rate_limited_carries_retry_after(self, backend: ChatBackend, streaming: bool) -> None:
        model = backend.model("rate_limited")
        with pytest.raises(ModelRateLimitedError) as caught:
            bounded(lambda: call(model, ask(), streaming))
        assert caught.value.retryable
        assert caught.value.retry_after_s == pytest.approx(RETRY_AFTER_S)
        _names_the_model(caught.value)

    @pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
    def test_rejected_request_is_not_retryable(self, backend: ChatBackend, streaming: bool) -> None:
        model = backend.model("rejected")
        with pytest.raises(ModelRequestError) as caught:
            bounded(lambda: call(model, ask(), streaming))
        assert not caught.value.retryable and not caught.value.counts_as_failure
        _names_the_model(caught.value)

    @pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
    def test_slow_answer_times_out(self, backend: ChatBackend, streaming: bool) -> None:
        model = backend.model("slow")
        started = time.monotonic()
        with pytest.raises(ModelTimeoutError) as caught:
            bounded(
                lambda: call(model, ask(LONG_ASK, max_tokens=400, timeout_s=TIMEOUT_S), streaming)
            )
        elapsed = time.monotonic() - started
        assert elapsed < SLOW_S, f"took {elapsed:.1f} s: it waited for the slow answer"
        _names_the_model(caught.value)

    def test_interrupted_stream_raises_after_some_text(self, backend: ChatBackend) -> None:
        model = backend.model("interrupted")
        received: list[ChatChunk] = []

        def consume() -> None:
            for chunk in model.stream(ask(max_tokens=40)):
                received.append(chunk)

        with pytest.raises(ModelUnavailableError) as caught:
            bounded(consume)
        assert received and all(c.finish_reason is None for c in received)
        _names_the_model(caught.value)


def _names_the_model(error: ChatModelError) -> None:
    assert error.model, f"{type(error).__name__} does not name the model: {error}"

"""``FallbackChatModel`` against the scripted fake: order, which errors fall through and which
end the request, served_by/rung, mid-stream continuation (its request, its log, its usage), the
explicit interruption error, and close propagation."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace

import pytest

from ragkeel.clock import ManualClock
from ragkeel.errors import (
    BudgetExceededError,
    ChatModelError,
    CircuitOpenError,
    DeadlineExceededError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
    RateLimitedError,
    StreamInterruptedError,
)
from ragkeel.gateway.base import ChatChunk, ChatMessage, ChatRequest, ChatResponse, Usage
from ragkeel.gateway.breaker import BreakerPolicy, CircuitBreakerChatModel
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.fallback import CONTINUE_PROMPT, FallbackChatModel
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.gateway.retry import RetryingChatModel

QUESTION = ChatMessage("user", "What is the capital of France?")
DOWN = ScriptedFailure("unavailable")


def request(max_tokens: int = 256) -> ChatRequest:
    return ChatRequest((QUESTION,), max_tokens=max_tokens)


def scripted(name: str, *replies: str | ScriptedFailure) -> ScriptedChatModel:
    return ScriptedChatModel(list(replies) or ["unused"], name=name)


def cut(after: int, text: str = "Paris is the capital of France.") -> ScriptedFailure:
    return ScriptedFailure("unavailable", after_tokens=after, partial=text)


class BreaksWith:
    """A provider that streams ``pieces`` and then raises ``error`` (the scripted fake only
    raises unavailable/timeout/generic errors)."""

    def __init__(self, name: str, error: ChatModelError, pieces: tuple[str, ...] = ()) -> None:
        self.name = name
        self.error = error
        self.pieces = pieces
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        raise self.error

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        self.calls += 1
        yield from (ChatChunk(piece) for piece in self.pieces)
        raise self.error


def text_of(chunks: list[ChatChunk]) -> str:
    return "".join(c.text_delta for c in chunks)


# -- complete ------------------------------------------------------------------------------------


def test_the_first_rung_that_answers_wins_in_order() -> None:
    rungs = [scripted("a", DOWN), scripted("b", DOWN), scripted("c", "from c"), scripted("d")]
    with recording(CallLog()) as log:
        response = FallbackChatModel(rungs).complete(request())
    assert (response.text, response.model) == ("from c", "c")
    assert [m.calls for m in rungs] == [1, 1, 1, 0]
    assert (log.served_by, log.rung) == ("c", 2)
    assert [(d.policy, d.reason) for d in log.decisions] == [
        ("fallback", "a failed (MODEL_UNAVAILABLE); falling back to b"),
        ("fallback", "b failed (MODEL_UNAVAILABLE); falling back to c"),
        ("fallback", "rung 2 c answered"),
    ]


def test_a_healthy_first_rung_is_rung_0() -> None:
    chain = FallbackChatModel([scripted("a", "first"), scripted("b", "second")])
    with recording(CallLog()) as log:
        assert chain.complete(request()).text == "first"
    assert (log.served_by, log.rung) == ("a", 0)


@pytest.mark.parametrize(
    "error",
    [
        ModelUnavailableError("503", model="a", status=503),
        ModelRateLimitedError("429", model="a", status=429, retry_after_s=7),
        ModelTimeoutError("slow", model="a"),
        ModelRequestError("400", model="a", status=400),
        CircuitOpenError("open", model="a"),
        StreamInterruptedError("cut", model="a", partial=""),
        ChatModelError("garbage", model="a"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_provider_failures_fall_through(error: ChatModelError) -> None:
    second = scripted("b", "from b")
    assert FallbackChatModel([BreaksWith("a", error), second]).complete(request()).text == "from b"


@pytest.mark.parametrize(
    "error",
    [
        DeadlineExceededError("no time", model="a"),
        BudgetExceededError("no money", model="a"),
        RateLimitedError("no admission", model="a"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_no_time_money_or_admission_left_ends_the_request(error: ChatModelError) -> None:
    second = scripted("b", "from b")
    log = CallLog()
    with recording(log), pytest.raises(type(error)) as info:
        FallbackChatModel([BreaksWith("a", error), second]).complete(request())
    assert info.value is error
    assert second.calls == 0
    assert log.served_by is None
    assert log.decisions[-1].reason == f"a failed ({error.code}); no fallback: it ends the request"


def test_when_all_fail_the_last_error_is_raised_with_the_chain() -> None:
    first = ModelUnavailableError("a is down", model="a")
    last = ModelTimeoutError("b is slow", model="b")
    log = CallLog()
    chain = FallbackChatModel([BreaksWith("a", first), BreaksWith("b", last)])
    with recording(log), pytest.raises(ModelTimeoutError) as info:
        chain.complete(request())
    assert info.value is last
    assert info.value.__context__ is first
    assert log.decisions[-1].reason == "b failed (MODEL_TIMEOUT); no rung left"


def test_rungs_are_named_by_their_deployment() -> None:
    clock = ManualClock()
    inner = scripted("gpt-4o", "hello")
    rung = CircuitBreakerChatModel(inner, deployment="azure-east", clock=clock)
    chain = FallbackChatModel([rung])
    with recording(CallLog()) as log:
        assert chain.complete(request()).model == "azure-east"
    assert log.served_by == "azure-east"
    assert chain.name == "gpt-4o"  # the model name (for the price table) stays the first's
    assert chain.deployments == ("azure-east",)
    retried = RetryingChatModel(CircuitBreakerChatModel(inner, deployment="azure-west"))
    assert FallbackChatModel([retried, rung]).deployments == ("azure-west", "azure-east")


def test_count_tokens_uses_the_first_rung() -> None:
    class Counts(BreaksWith):
        def count_tokens(self, text: str) -> int:
            return 42

    chain = FallbackChatModel([Counts("a", ChatModelError("x")), scripted("b")])
    assert chain.count_tokens("one two") == 42


def test_an_empty_chain_is_rejected() -> None:
    with pytest.raises(ValueError):
        FallbackChatModel([])


# -- stream --------------------------------------------------------------------------------------


def test_a_stream_that_fails_before_any_text_falls_through() -> None:
    chain = FallbackChatModel([scripted("a", DOWN), scripted("b", "Paris.")])
    with recording(CallLog()) as log:
        chunks = list(chain.stream(request()))
    assert text_of(chunks) == "Paris."
    assert chunks[-1].model == "b"
    assert all(c.model is None for c in chunks[:-1])
    assert chunks[-1].usage == Usage(7, 2)  # only b produced text
    assert (log.served_by, log.rung) == ("b", 1)


def test_an_interrupted_stream_continues_on_the_next_rung() -> None:
    primary = scripted("primary", cut(2))  # "Paris", " is", then the connection breaks
    secondary = scripted("secondary", " the capital.")
    with recording(CallLog()) as log:
        chunks = list(FallbackChatModel([primary, secondary]).stream(request(max_tokens=50)))
    assert text_of(chunks) == "Paris is the capital."
    continued = secondary.requests[0]
    assert continued.messages == (
        QUESTION,
        ChatMessage("assistant", "Paris is"),
        ChatMessage("user", CONTINUE_PROMPT),
    )
    assert continued.max_tokens == 50 - 2  # the partial's tokens are spent
    assert "primary interrupted after 8 chars (MODEL_UNAVAILABLE); continued on secondary" in [
        d.reason for d in log.decisions
    ]
    assert (chunks[-1].model, log.served_by, log.rung) == ("secondary", "secondary", 1)
    # usage: primary's estimate (7 prompt + 2 completion) + secondary's report
    secondary_prompt = sum(secondary.count_tokens(m.content) for m in continued.messages)
    assert chunks[-1].usage == Usage(7 + secondary_prompt, 2 + 3)


def test_without_a_next_rung_the_consumer_gets_the_partial_in_an_explicit_error() -> None:
    received: list[str] = []
    log = CallLog()
    with recording(log), pytest.raises(StreamInterruptedError) as info:
        for chunk in FallbackChatModel([scripted("only", cut(3))]).stream(request()):
            received.append(chunk.text_delta)
    assert "".join(received) == info.value.partial == "Paris is the"
    assert isinstance(info.value.__cause__, ModelUnavailableError)
    assert log.decisions[-1].reason == (
        "only interrupted after 12 chars (MODEL_UNAVAILABLE); answer incomplete: no rung left"
    )
    assert log.served_by is None


def test_continuation_off_raises_instead_of_continuing() -> None:
    secondary = scripted("secondary", "never")
    chain = FallbackChatModel([scripted("a", cut(1)), secondary], continue_interrupted=False)
    with pytest.raises(StreamInterruptedError) as info:
        list(chain.stream(request()))
    assert info.value.partial == "Paris"
    assert secondary.calls == 0


def test_a_failed_continuation_ends_with_everything_delivered() -> None:
    third = scripted("c", " of France.")
    chain = FallbackChatModel(
        [scripted("a", cut(2)), scripted("b", cut(2, " the capital will not finish")), third]
    )
    chunks = list(chain.stream(request()))
    assert text_of(chunks) == "Paris is the capital of France."
    assert third.requests[0].messages[-2] == ChatMessage("assistant", "Paris is the capital")

    last = ModelUnavailableError("b down", model="b")
    failing = FallbackChatModel([scripted("a", cut(2)), BreaksWith("b", last)])
    with pytest.raises(StreamInterruptedError) as info:
        list(failing.stream(request()))
    assert info.value.partial == "Paris is"
    assert info.value.__cause__ is last


def test_a_deadline_after_text_is_still_an_explicit_interruption() -> None:
    deadline = DeadlineExceededError("no time", model="a")
    second = scripted("b", "never")
    chain = FallbackChatModel([BreaksWith("a", deadline, ("Paris", " is")), second])
    with pytest.raises(StreamInterruptedError) as info:
        list(chain.stream(request()))
    assert (info.value.partial, info.value.__cause__) == ("Paris is", deadline)
    assert second.calls == 0


def test_closing_the_stream_cancels_the_running_rung() -> None:
    primary = scripted("a", "one two three four")
    stream = FallbackChatModel([primary, scripted("b")]).stream(request())
    assert next(stream).text_delta == "one"
    stream.close()
    assert primary.cancelled == 1


def test_closing_a_continued_stream_cancels_the_continuation() -> None:
    secondary = scripted("b", " three four five")
    stream = FallbackChatModel([scripted("a", cut(2, "one two")), secondary]).stream(request())
    assert [next(stream).text_delta for _ in range(3)] == ["one", " two", " three"]
    stream.close()
    assert secondary.cancelled == 1


def test_the_rung_sees_its_stream_finish_even_if_the_consumer_stops_at_the_last_chunk() -> None:
    clock = ManualClock()
    inner = scripted("a", DOWN, "recovered")
    rung = CircuitBreakerChatModel(inner, policy=BreakerPolicy(consecutive_failures=1), clock=clock)
    with pytest.raises(ModelUnavailableError):
        rung.complete(request())
    clock.advance(30.0)
    stream = FallbackChatModel([rung]).stream(request())
    for chunk in stream:
        if chunk.finish_reason is not None:
            break  # the consumer has the whole answer and asks for nothing more
    assert chunk.model == "a"
    stream.close()
    assert rung.snapshot().state == "closed"  # the probe's success was recorded


def test_nothing_is_sent_before_the_stream_is_advanced() -> None:
    primary = scripted("a", "x")
    stream = FallbackChatModel([primary]).stream(request())
    assert primary.calls == 0
    assert text_of(list(stream)) == "x"


# -- next_rung: where the request goes if a rung fails -----------------------------------------


def test_every_rung_but_the_last_is_told_which_rung_comes_next() -> None:
    a, b, c = scripted("a", DOWN), scripted("b", DOWN), scripted("c", "Paris.")
    chain = FallbackChatModel([a, b, c])
    assert chain.complete(request()).text == "Paris."
    assert "".join(x.text_delta for x in chain.stream(request())) == "Paris."
    assert [r.next_rung for r in a.requests] == ["b", "b"]
    assert [r.next_rung for r in b.requests] == ["c", "c"]
    assert [r.next_rung for r in c.requests] == [None, None]


def test_the_last_rung_keeps_the_next_rung_of_an_outer_chain() -> None:
    inner = scripted("inner", "Paris.")
    FallbackChatModel([inner]).complete(replace(request(), next_rung="outer"))
    assert inner.requests[0].next_rung == "outer"

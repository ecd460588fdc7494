"""``MeteredChatModel`` records one ``Attempt`` per provider call in the ``CallLog`` being
recorded."""

from __future__ import annotations

import threading

import pytest

from ragkeel.clock import ManualClock
from ragkeel.errors import ModelUnavailableError
from ragkeel.gateway.base import ChatMessage, ChatRequest, Usage
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.metering import MeteredChatModel
from ragkeel.gateway.pricing import Price
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure

PRICE = Price(input_per_mtok=2.0, output_per_mtok=10.0)


def _request() -> ChatRequest:
    return ChatRequest((ChatMessage("user", "What is the capital of France?"),))


def test_complete_records_usage_latency_and_cost() -> None:
    log = CallLog()
    metered = MeteredChatModel(
        ScriptedChatModel(["Paris is the capital."]), deployment="d1", price=PRICE
    )
    with recording(log):
        response = metered.complete(_request())
    (attempt,) = log.attempts
    assert attempt.deployment == "d1" and attempt.outcome == "ok" and attempt.code is None
    assert attempt.usage == response.usage and response.usage.completion_tokens == 5
    assert attempt.cost == pytest.approx(PRICE.cost(response.usage))
    assert log.cost == pytest.approx(attempt.cost) and log.usage == response.usage


def test_failure_before_text_costs_nothing_and_keeps_the_code() -> None:
    log = CallLog()
    metered = MeteredChatModel(
        ScriptedChatModel([ScriptedFailure("unavailable")]), deployment="d1", price=PRICE
    )
    with recording(log), pytest.raises(ModelUnavailableError):
        list(metered.stream(_request()))
    (attempt,) = log.attempts
    assert attempt.outcome == "error" and attempt.code == "MODEL_UNAVAILABLE"
    assert attempt.usage == Usage() and attempt.cost == 0.0


def test_stream_interrupted_and_closed_early_are_billed_for_what_was_sent() -> None:
    clock = ManualClock()
    failing = ScriptedChatModel(
        [ScriptedFailure("unavailable", after_tokens=2, partial="Paris is the capital.")]
    )
    log = CallLog()
    metered = MeteredChatModel(failing, price=PRICE, clock=clock)
    with recording(log), pytest.raises(ModelUnavailableError):
        list(metered.stream(_request()))
    assert log.attempts[0].usage.completion_tokens == 2  # "Paris is" was sent before failing
    assert log.attempts[0].deployment == "scripted"

    log2 = CallLog()
    with recording(log2):
        stream = MeteredChatModel(ScriptedChatModel(["one two three four"]), price=PRICE).stream(
            _request()
        )
        assert next(stream).text_delta == "one"
        stream.close()
    (attempt,) = log2.attempts
    assert attempt.outcome == "interrupted" and attempt.usage.completion_tokens == 1


def test_without_a_log_nothing_is_recorded_and_answers_pass_through() -> None:
    metered = MeteredChatModel(ScriptedChatModel(["ok"]))
    assert metered.complete(_request()).text == "ok"
    assert metered.name == "scripted" and metered.count_tokens("a b") == 2


def test_a_stream_closed_after_its_last_chunk_is_a_success() -> None:
    log = CallLog()
    with recording(log):
        stream = MeteredChatModel(ScriptedChatModel(["one two"]), price=PRICE).stream(_request())
        chunks = [next(stream), next(stream)]
        assert chunks[-1].finish_reason == "stop"
        stream.close()
    (attempt,) = log.attempts
    assert attempt.outcome == "ok" and attempt.usage == chunks[-1].usage


def test_closing_early_closes_the_provider_stream_before_counting_tokens() -> None:
    # issue 9: on close the meter estimated usage with count_tokens while the provider's stream,
    # still open, held the lock count_tokens needs (the local model): the answer thread hung for
    # good and every later answer waited behind it
    log = CallLog()
    model = ScriptedChatModel(["one two three four five six"], serialised=True)
    metered = MeteredChatModel(model, deployment="local", price=PRICE)
    done = threading.Event()

    def consume_two_then_close() -> None:
        with recording(log):  # a new thread starts with an empty context
            stream = metered.stream(_request())
            next(stream), next(stream)
            stream.close()
        done.set()

    threading.Thread(target=consume_two_then_close, daemon=True).start()
    assert done.wait(5.0), "closing the metered stream deadlocked"
    (attempt,) = log.attempts
    assert attempt.outcome == "interrupted" and attempt.usage.completion_tokens == 2
    assert model.cancelled == 1
    assert model.count_tokens("still usable") == 2  # the provider's lock was released

"""``RetryingChatModel`` and ``RetryBudget`` against ``ScriptedChatModel`` on a ``ManualClock``:
which errors are retried and how often, the backoff delays, Retry-After, deadlines, the
budget, and streams."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

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
    StreamInterruptedError,
)
from ragkeel.gateway.base import ChatMessage, ChatRequest
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.providers.scripted import Reply, ScriptedChatModel, ScriptedFailure
from ragkeel.gateway.retry import RetryBudget, RetryingChatModel, RetryPolicy

MESSAGES = (ChatMessage("user", "What is the capital of France?"),)
ANSWER = "Paris is the capital."
UNAVAILABLE = ScriptedFailure("unavailable")


@dataclass
class Script:
    """Plays ``items`` in order (the last repeats): a reply, or an exception to raise at the
    call, the way a provider raises a typed HTTP error. ``on_call`` runs first (for example to
    let time pass on the manual clock); ``calls`` records (clock time, request) per call."""

    items: Sequence[Reply | ChatModelError]
    clock: ManualClock
    on_call: Callable[[], None] = lambda: None
    calls: list[tuple[float, ChatRequest]] = field(default_factory=list)

    def __call__(self, request: ChatRequest) -> Reply:
        self.calls.append((self.clock.now(), request))
        self.on_call()
        item = self.items[min(len(self.calls) - 1, len(self.items) - 1)]
        if isinstance(item, ChatModelError):
            raise item
        return item


def _retrying(
    items: Sequence[Reply | ChatModelError],
    policy: RetryPolicy = RetryPolicy(),
    *,
    budget: RetryBudget | None = None,
    seed: int = 0,
) -> tuple[RetryingChatModel, ScriptedChatModel, ManualClock]:
    clock = ManualClock()
    inner = ScriptedChatModel(Script(items, clock), name="primary")
    model = RetryingChatModel(inner, policy, budget=budget, clock=clock, rng=random.Random(seed))
    return model, inner, clock


def _request(**fields: object) -> ChatRequest:
    return ChatRequest(MESSAGES, **fields)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def log() -> Iterator[CallLog]:
    """Every call in these tests is recorded, as the answer flow records it."""
    with recording(CallLog()) as log:
        yield log


# -- which errors, how often ---------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        UNAVAILABLE,
        ScriptedFailure("timeout"),
        ModelUnavailableError("HTTP 503", status=503),
        ModelUnavailableError("HTTP 500", status=500),
        ModelRateLimitedError("HTTP 429", status=429),
        ModelUnavailableError("connection reset"),
        ModelTimeoutError("read timeout"),
    ],
    ids=["scripted-unavailable", "scripted-timeout", "503", "500", "429", "reset", "timeout"],
)
def test_retryable_errors_are_retried(failure: Reply | ChatModelError) -> None:
    model, inner, clock = _retrying([failure, failure, ANSWER])
    assert model.complete(_request()).text == ANSWER
    assert inner.calls == 3
    assert len(clock.sleeps) == 2


def test_gives_up_after_max_retries_with_the_last_error() -> None:
    model, inner, clock = _retrying([UNAVAILABLE], RetryPolicy(max_retries=3))
    with pytest.raises(ModelUnavailableError):
        model.complete(_request())
    assert inner.calls == 4
    assert len(clock.sleeps) == 3


@pytest.mark.parametrize(
    "error",
    [
        *(ModelRequestError(f"HTTP {s}", status=s) for s in (400, 401, 403, 404, 422)),
        CircuitOpenError("open", retry_after_s=3.0),
        DeadlineExceededError("deadline"),
        BudgetExceededError("budget"),
        StreamInterruptedError("cut", partial="Paris"),
        ChatModelError("garbage"),
    ],
    ids=["400", "401", "403", "404", "422", "circuit", "deadline", "budget", "interrupted", "bad"],
)
def test_non_retryable_errors_are_raised_at_once(error: ChatModelError, log: CallLog) -> None:
    model, inner, clock = _retrying([error, ANSWER])
    request = _request()
    with pytest.raises(ChatModelError) as info:
        model.complete(request)
    assert info.value is error
    assert inner.calls == 1
    assert clock.sleeps == []
    assert log.decisions == []


def test_success_needs_no_retry_and_logs_nothing(log: CallLog) -> None:
    model, inner, clock = _retrying([ANSWER])
    request = _request()
    assert model.complete(request).text == ANSWER
    assert (inner.calls, clock.sleeps) == (1, [])
    assert log.decisions == []
    assert model.name == "primary"
    assert model.count_tokens("a b c") == inner.count_tokens("a b c") == 3


# -- backoff ---------------------------------------------------------------------------------


def test_delay_bounds_grow_exponentially_up_to_the_cap() -> None:
    model, _, _ = _retrying([ANSWER], RetryPolicy(base_delay_s=0.25, max_delay_s=1.5))
    assert [model.delay_bounds(n) for n in (1, 2, 3, 4, 5, 100)] == [
        (0.0, 0.25),
        (0.0, 0.5),
        (0.0, 1.0),
        (0.0, 1.5),
        (0.0, 1.5),
        (0.0, 1.5),
    ]
    with pytest.raises(ValueError, match="start at 1"):
        model.delay_bounds(0)


def test_delays_are_full_jitter_inside_their_bounds() -> None:
    policy = RetryPolicy(max_retries=5, base_delay_s=0.1, max_delay_s=0.5)
    by_retry: dict[int, list[float]] = {n: [] for n in range(1, 6)}
    for seed in range(200):
        model, _, clock = _retrying([UNAVAILABLE], policy, seed=seed)
        with pytest.raises(ModelUnavailableError):
            model.complete(_request())
        assert len(clock.sleeps) == 5
        for n, delay in enumerate(clock.sleeps, start=1):
            by_retry[n].append(delay)
    for n, delays in by_retry.items():
        low, high = model.delay_bounds(n)
        assert all(low <= d <= high for d in delays)
        # full jitter spreads over the whole interval (not a fixed delay, not "half + jitter")
        assert min(delays) < 0.1 * high and max(delays) > 0.9 * high


def test_retries_are_logged_with_delay_and_reason(log: CallLog) -> None:
    error = ModelUnavailableError("HTTP 503", status=503)
    model, _, clock = _retrying([error, ScriptedFailure("timeout"), ANSWER])
    request = _request()
    model.complete(request)
    assert [d.policy for d in log.decisions] == ["retry", "retry"]
    first, second = (d.reason for d in log.decisions)
    assert (
        first == f"primary: retry 1/2 after {clock.sleeps[0]:.3f} s (MODEL_UNAVAILABLE, HTTP 503)"
    )
    assert second == f"primary: retry 2/2 after {clock.sleeps[1]:.3f} s (MODEL_TIMEOUT)"


# -- Retry-After ---------------------------------------------------------------------------


def test_retry_after_replaces_the_jittered_delay_exactly(log: CallLog) -> None:
    limited = ModelRateLimitedError("HTTP 429", status=429, retry_after_s=7.0)
    model, inner, clock = _retrying([limited, ANSWER])
    request = _request()
    assert model.complete(request).text == ANSWER
    assert clock.sleeps == [7.0]
    assert inner.calls == 2
    assert log.decisions[0].reason == (
        "primary: retry 1/2 after 7.000 s (MODEL_RATE_LIMITED, HTTP 429)"
    )


def test_a_retry_after_longer_than_allowed_is_raised_at_once() -> None:
    limited = ModelRateLimitedError("HTTP 429", status=429, retry_after_s=10.5)
    model, inner, clock = _retrying([limited, ANSWER], RetryPolicy(max_retry_after_s=10.0))
    with pytest.raises(ModelRateLimitedError) as info:
        model.complete(_request())
    assert info.value is limited
    assert (inner.calls, clock.sleeps) == (1, [])


def test_a_retry_after_past_the_deadline_is_raised_at_once() -> None:
    limited = ModelUnavailableError("HTTP 503", status=503, retry_after_s=5.0)
    model, inner, clock = _retrying([limited, ANSWER])
    with pytest.raises(ModelUnavailableError) as info:
        model.complete(_request(deadline=clock.now() + 4.0))
    assert info.value is limited
    assert (inner.calls, clock.sleeps) == (1, [])


# -- deadlines -------------------------------------------------------------------------------


def test_each_attempt_gets_the_smallest_of_its_timeouts() -> None:
    clock = ManualClock()
    script = Script([UNAVAILABLE], clock, on_call=lambda: clock.advance(0.9))
    inner = ScriptedChatModel(script)
    policy = RetryPolicy(max_retries=5, base_delay_s=0.0, attempt_timeout_s=1.0)
    model = RetryingChatModel(inner, policy, clock=clock, rng=random.Random(0))
    request = _request(timeout_s=2.0, deadline=clock.now() + 2.5)
    with pytest.raises(DeadlineExceededError) as info:
        model.complete(request)
    started = [t for t, _ in script.calls]
    timeouts = [r.timeout_s for _, r in script.calls]
    # 2.5 s: attempts at +0 (1.0 by policy), +0.9 (1.0), +1.8 (0.7 left), +2.7 is past it
    assert timeouts == pytest.approx([1.0, 1.0, 0.7])
    assert all(request.deadline is not None and request.deadline - t >= 0.05 for t in started)
    assert isinstance(info.value.__cause__, ModelUnavailableError)


def test_no_attempt_starts_with_less_than_min_attempt_left() -> None:
    clock = ManualClock()
    script = Script([UNAVAILABLE], clock, on_call=lambda: clock.advance(0.47))
    inner = ScriptedChatModel(script)
    policy = RetryPolicy(max_retries=10, base_delay_s=0.0, min_attempt_s=0.1)
    model = RetryingChatModel(inner, policy, clock=clock)
    deadline = clock.now() + 1.0
    with pytest.raises(DeadlineExceededError):
        model.complete(_request(deadline=deadline))
    assert len(script.calls) == 2  # a third would start with 0.06 s left
    assert clock.now() - deadline == pytest.approx(-0.06)


def test_an_expired_deadline_sends_nothing() -> None:
    model, inner, clock = _retrying([ANSWER])
    with pytest.raises(DeadlineExceededError):
        model.complete(_request(deadline=clock.now() + 0.01))
    assert inner.calls == 0


def test_a_backoff_ending_past_the_deadline_is_not_slept(log: CallLog) -> None:
    seed = 3
    assert random.Random(seed).uniform(0.0, 10.0) > 0.5  # the draw below would overrun
    policy = RetryPolicy(base_delay_s=10.0, max_delay_s=10.0)
    model, inner, clock = _retrying([UNAVAILABLE, ANSWER], policy, seed=seed)
    request = _request(deadline=clock.now() + 0.5)
    with pytest.raises(DeadlineExceededError) as info:
        model.complete(request)
    assert (inner.calls, clock.sleeps) == (1, [])
    assert isinstance(info.value.__cause__, ModelUnavailableError)
    assert "backoff" in log.decisions[-1].reason


# -- budget ----------------------------------------------------------------------------------


def test_budget_allows_a_share_of_requests_plus_a_floor() -> None:
    clock = ManualClock()
    budget = RetryBudget(ratio=0.2, window_s=10.0, min_retries=1, clock=clock)
    for _ in range(10):
        budget.record_request()
    spent = sum(budget.try_spend() for _ in range(10))
    assert spent == 3  # 1 + 0.2 * 10
    assert budget.counts() == (10, 3)
    clock.advance(10.0)
    assert budget.counts() == (0, 0)  # the window slid past all of them
    assert budget.try_spend()


def test_an_exhausted_budget_stops_retrying_and_says_so(log: CallLog) -> None:
    clock = ManualClock()
    budget = RetryBudget(ratio=0.0, window_s=10.0, min_retries=2, clock=clock)
    inner = ScriptedChatModel([UNAVAILABLE], name="primary")
    model = RetryingChatModel(inner, RetryPolicy(), budget=budget, clock=clock)
    with pytest.raises(ModelUnavailableError):
        model.complete(_request())
    assert inner.calls == 3  # both retries from the floor
    request = _request()
    with pytest.raises(ModelUnavailableError):
        model.complete(request)
    assert inner.calls == 4  # no retry left
    assert log.decisions[-1].reason == (
        "primary: retry budget exhausted, not retrying (MODEL_UNAVAILABLE)"
    )
    clock.advance(10.0)
    with pytest.raises(ModelUnavailableError):
        model.complete(_request())
    assert inner.calls == 7  # the window moved on: retries again


# -- with another rung to go to (request.next_rung) ---------------------------------------


@pytest.mark.parametrize(
    "failure",
    [ScriptedFailure("timeout"), ModelTimeoutError("read timeout")],
    ids=["scripted-timeout", "timeout"],
)
def test_a_timeout_moves_on_when_the_request_has_a_next_rung(
    failure: Reply | ChatModelError, log: CallLog
) -> None:
    model, inner, clock = _retrying([failure, ANSWER])
    request = _request(next_rung="fallback")
    with pytest.raises(ModelTimeoutError):
        model.complete(request)
    assert (inner.calls, clock.sleeps) == (1, [])
    assert [d.reason for d in log.decisions] == [
        "primary: MODEL_TIMEOUT, not retried: fallback next"
    ]


def test_a_timed_out_stream_moves_on_when_the_request_has_a_next_rung() -> None:
    model, inner, clock = _retrying([ScriptedFailure("timeout"), "a b c"])
    with pytest.raises(ModelTimeoutError):
        list(model.stream(_request(next_rung="fallback")))
    assert (inner.calls, clock.sleeps) == (1, [])


@pytest.mark.parametrize(
    "failure",
    [
        UNAVAILABLE,
        ModelUnavailableError("HTTP 503", status=503),
        ModelRateLimitedError("HTTP 429", status=429),
        ModelUnavailableError("connection refused"),
    ],
    ids=["scripted-unavailable", "503", "429", "refused"],
)
def test_fast_failures_are_still_retried_with_a_next_rung(failure: Reply | ChatModelError) -> None:
    model, inner, clock = _retrying([failure, failure, ANSWER])
    assert model.complete(_request(next_rung="fallback")).text == ANSWER
    assert (inner.calls, len(clock.sleeps)) == (3, 2)


def test_with_a_next_rung_retry_after_is_slept_up_to_the_patience_in_total(log: CallLog) -> None:
    limited = ModelRateLimitedError("HTTP 429", status=429, retry_after_s=0.4)
    policy = RetryPolicy(max_retries=5, fallback_patience_s=1.0)
    model, inner, clock = _retrying([limited], policy)
    request = _request(next_rung="fallback")
    with pytest.raises(ModelRateLimitedError):
        model.complete(request)
    assert clock.sleeps == [0.4, 0.4]  # a third 0.4 s would pass the 1 s patience
    assert inner.calls == 3
    assert log.decisions[-1].reason == (
        "primary: Retry-After 0.4 s is longer than the 0.2 s left to wait here"
        " (MODEL_RATE_LIMITED, HTTP 429)"
    )
    # the last rung: max_retry_after_s (10 s) per retry, as before
    model, inner, clock = _retrying([limited], policy)
    with pytest.raises(ModelRateLimitedError):
        model.complete(_request())
    assert clock.sleeps == [0.4] * 5


def test_the_fallback_patience_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        RetryPolicy(fallback_patience_s=-1.0)


# -- streams ---------------------------------------------------------------------------------


def test_stream_is_retried_before_the_first_chunk() -> None:
    model, inner, clock = _retrying([UNAVAILABLE, "a b c"])
    chunks = list(model.stream(_request()))
    assert "".join(c.text_delta for c in chunks) == "a b c"
    assert chunks[-1].finish_reason == "stop"
    assert (inner.calls, len(clock.sleeps)) == (2, 1)


def test_stream_is_not_retried_once_text_went_out() -> None:
    cut = ScriptedFailure("unavailable", after_tokens=2, partial="a b c")
    model, inner, clock = _retrying([cut, "a b c"])
    received: list[str] = []
    with pytest.raises(ModelUnavailableError):
        for chunk in model.stream(_request()):
            received.append(chunk.text_delta)
    assert received == ["a", " b"]
    assert (inner.calls, clock.sleeps) == (1, [])


def test_closing_the_stream_closes_the_inner_stream() -> None:
    model, inner, _ = _retrying(["a b c d"])
    stream = model.stream(_request())
    assert next(stream).text_delta == "a"
    stream.close()
    assert inner.cancelled == 1


def test_stream_sends_nothing_until_advanced() -> None:
    model, inner, _ = _retrying([ANSWER])
    stream = model.stream(_request())
    assert inner.calls == 0
    stream.close()
    assert inner.calls == 0

"""``CircuitBreakerChatModel`` against the scripted fake and the fault server, on a
``ManualClock``: when it opens, how it probes, what counts, Retry-After cool-downs, streams."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator

import pytest

from ragkeel.clock import ManualClock
from ragkeel.errors import (
    BudgetExceededError,
    ChatModelError,
    CircuitOpenError,
    DeadlineExceededError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelUnavailableError,
    StreamInterruptedError,
)
from ragkeel.gateway.base import ChatChunk, ChatMessage, ChatRequest, ChatResponse, ChatStream
from ragkeel.gateway.breaker import (
    BreakerPolicy,
    CircuitBreakerChatModel,
    InMemoryBreakerStore,
)
from ragkeel.gateway.breaker_store import BreakerStore
from ragkeel.gateway.calllog import Attempt, CallLog, recording
from ragkeel.gateway.providers.openai_compat import OpenAICompatChatModel
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.testing import FaultServer
from ragkeel.testing.contracts.breaker_store import BreakerStoreContract

DOWN = ScriptedFailure("unavailable")
POLICY = BreakerPolicy(consecutive_failures=3, min_calls=1_000, open_s=30.0, max_open_s=100.0)


def request() -> ChatRequest:
    return ChatRequest((ChatMessage("user", "What is the capital of France?"),))


class FailingModel:
    """A provider that raises ``error`` on every call: the errors the scripted fake cannot
    produce (deadline, budget, a 4xx) without a network round trip."""

    name = "failing"

    def __init__(self, error: ChatModelError) -> None:
        self.error = error
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        raise self.error

    def stream(self, request: ChatRequest) -> ChatStream:
        self.calls += 1
        raise self.error


def breaker(
    inner: ScriptedChatModel | FailingModel | OpenAICompatChatModel,
    clock: ManualClock,
    policy: BreakerPolicy = POLICY,
    store: InMemoryBreakerStore | None = None,
) -> CircuitBreakerChatModel:
    return CircuitBreakerChatModel(
        inner, deployment="primary", policy=policy, store=store, clock=clock
    )


def fail(model: CircuitBreakerChatModel, log: CallLog | None = None) -> ChatModelError:
    with pytest.raises(ChatModelError) as info, recording(log or CallLog()):
        model.complete(request())
    return info.value


def trip(model: CircuitBreakerChatModel, times: int = 3) -> None:
    for _ in range(times):
        assert not isinstance(fail(model), CircuitOpenError)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(seed=0) as fault_server:
        yield fault_server


@pytest.fixture
def http_model(server: FaultServer) -> Iterator[OpenAICompatChatModel]:
    with OpenAICompatChatModel(server.base_url, "fault", api_key=None, timeout_s=2.0) as client:
        yield client


# -- closed -> open ---------------------------------------------------------------------------


def test_opens_after_consecutive_failures_and_then_rejects_without_calling(
    clock: ManualClock,
) -> None:
    inner = ScriptedChatModel([DOWN, DOWN, DOWN, "fine"])
    model = breaker(inner, clock)
    trip(model)
    log = CallLog()
    error = fail(model, log)
    assert isinstance(error, CircuitOpenError)
    assert error.retry_after_s == pytest.approx(30.0)
    assert inner.calls == 3  # the fourth call never reached the provider
    assert log.attempts == [Attempt("primary", "rejected", 0.0, code="CIRCUIT_OPEN")]
    snap = model.snapshot()
    assert (snap.state, snap.open_for_s, snap.opened_until) == ("open", 30.0, clock.now() + 30)


def test_the_tripping_call_logs_the_transition(clock: ManualClock) -> None:
    model = breaker(ScriptedChatModel([DOWN]), clock)
    trip(model, 2)
    log = CallLog()
    fail(model, log)
    assert [(d.policy, d.reason) for d in log.decisions] == [
        ("breaker", "primary opened for 30 s after 3 consecutive failures")
    ]


def test_a_success_resets_the_consecutive_count(clock: ManualClock) -> None:
    model = breaker(ScriptedChatModel([DOWN, DOWN, "ok", DOWN, DOWN, "ok"]), clock)
    for expected in ("error", "error", "ok", "error", "error", "ok"):
        if expected == "ok":
            assert model.complete(request()).text == "ok"
        else:
            assert isinstance(fail(model), ModelUnavailableError)
    assert model.snapshot().state == "closed"


def test_opens_on_failure_rate_over_min_calls(clock: ManualClock) -> None:
    policy = BreakerPolicy(consecutive_failures=100, failure_rate=0.5, min_calls=10)
    model = breaker(ScriptedChatModel(["ok", DOWN] * 10), clock, policy)
    for i in range(9):  # ok, down, ... : 9 calls, 4 failures: too few calls to judge
        if i % 2:
            fail(model)
        else:
            model.complete(request())
    assert (model.snapshot().state, model.snapshot().calls) == ("closed", 9)
    fail(model)  # the 10th call: 5 of 10 failed
    assert model.snapshot().state == "open"


def test_the_rate_window_forgets_old_calls(clock: ManualClock) -> None:
    policy = BreakerPolicy(consecutive_failures=100, failure_rate=0.5, min_calls=4, window_s=10)
    model = breaker(ScriptedChatModel([DOWN, DOWN, DOWN, "ok", DOWN]), clock, policy)
    trip(model)  # 3 calls, 3 failures: below min_calls
    clock.advance(11.0)  # those fell out of the window
    model.complete(request())
    fail(model)
    snap = model.snapshot()
    assert (snap.state, snap.calls, snap.rate) == ("closed", 2, 0.5)


# -- half-open: one probe; success closes, failure re-opens for longer -------------------------


def test_after_the_open_period_one_probe_closes_on_success(clock: ManualClock) -> None:
    inner = ScriptedChatModel([DOWN, DOWN, DOWN, "back"])
    model = breaker(inner, clock)
    trip(model)
    clock.advance(29.9)
    assert isinstance(fail(model), CircuitOpenError)
    clock.advance(0.2)
    assert model.snapshot().state == "half_open"
    with recording(CallLog()) as log:
        assert model.complete(request()).text == "back"
    assert [d.reason for d in log.decisions] == [
        "primary half-open (open period over): one probe let through",
        "primary closed after a successful probe",
    ]
    snap = model.snapshot()
    assert (snap.state, snap.open_for_s, snap.reopen_count) == ("closed", 0.0, 0)


def test_failed_probes_reopen_for_twice_as_long_up_to_the_cap(clock: ManualClock) -> None:
    inner = ScriptedChatModel([DOWN])
    model = breaker(inner, clock)
    trip(model)
    periods = [model.snapshot().open_for_s]
    for _ in range(3):
        clock.advance(periods[-1])
        assert not isinstance(fail(model), CircuitOpenError)  # the probe reached the provider
        periods.append(model.snapshot().open_for_s)
        clock.advance(periods[-1] - 0.01)
        assert isinstance(fail(model), CircuitOpenError)  # re-opened for the whole period
    assert periods == [30.0, 60.0, 100.0, 100.0]
    assert model.snapshot().reopen_count == 3
    assert inner.calls == 3 + 3


def test_after_a_close_the_next_open_period_starts_again_at_open_s(clock: ManualClock) -> None:
    model = breaker(ScriptedChatModel([DOWN, DOWN, DOWN, DOWN, "ok", DOWN]), clock)
    trip(model)
    clock.advance(30.0)
    fail(model)  # failed probe: 60 s
    clock.advance(60.0)
    model.complete(request())  # successful probe: closed, period reset
    trip(model)
    assert model.snapshot().open_for_s == 30.0


def test_concurrent_callers_get_exactly_one_probe(clock: ManualClock) -> None:
    slow = ScriptedChatModel([DOWN, DOWN, DOWN, "a slow probe answer"], token_delay_s=0.03)
    model = breaker(slow, clock)
    trip(model)
    clock.advance(30.0)
    callers = 8
    start = threading.Barrier(callers)
    results: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        start.wait(timeout=2.0)
        try:
            outcome = model.complete(request()).text
        except CircuitOpenError:
            outcome = "rejected"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5.0)
    assert sorted(results) == ["a slow probe answer"] + ["rejected"] * (callers - 1)
    assert slow.calls == 3 + 1
    assert model.snapshot().state == "closed"


def test_a_probe_whose_lease_ran_out_frees_its_slot(clock: ManualClock) -> None:
    policy = BreakerPolicy(consecutive_failures=1, open_s=10.0, probe_lease_s=5.0)
    late = ScriptedFailure("unavailable", after_tokens=1, partial="late answer")
    model = breaker(ScriptedChatModel([DOWN, late, "second probe"]), clock, policy)
    trip(model, 1)
    clock.advance(10.0)
    stuck = model.stream(request())
    next(stuck)  # the probe is running (and stalls: its consumer went away)
    assert isinstance(fail(model), CircuitOpenError)
    clock.advance(5.0)
    assert model.complete(request()).text == "second probe"
    with pytest.raises(ModelUnavailableError):
        list(stuck)  # the stale probe fails at last: too late to re-open the breaker
    assert model.snapshot().state == "closed"


def test_a_call_admitted_before_a_reopen_and_close_cannot_count(clock: ManualClock) -> None:
    late = ScriptedFailure("unavailable", after_tokens=1, partial="late answer")
    model = breaker(ScriptedChatModel([late, DOWN, DOWN, DOWN, "probe ok"]), clock)
    early = model.stream(request())
    next(early)  # admitted while closed
    trip(model)
    clock.advance(30.0)
    model.complete(request())  # the probe closes the breaker
    with pytest.raises(ModelUnavailableError):
        list(early)
    assert model.snapshot().failures == 0  # the old call's failure is not the new epoch's


# -- what counts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ModelRequestError("400", model="m", status=400),
        DeadlineExceededError("deadline", model="m"),
        BudgetExceededError("budget", model="m"),
    ],
    ids=["client-error", "deadline", "budget"],
)
def test_errors_that_are_not_the_providers_fault_move_nothing(
    clock: ManualClock, error: ChatModelError
) -> None:
    inner = FailingModel(error)
    model = breaker(inner, clock)
    for _ in range(10):
        assert fail(model) is error
    assert inner.calls == 10
    snap = model.snapshot()
    assert (snap.state, snap.failures, snap.calls) == ("closed", 0, 0)


@pytest.mark.parametrize("status", ["400", "401", "403"])
def test_http_client_errors_never_move_the_breaker(
    clock: ManualClock, server: FaultServer, http_model: OpenAICompatChatModel, status: str
) -> None:
    server.set(error_rate=1.0, error=status)
    model = breaker(http_model, clock)
    for _ in range(6):
        assert isinstance(fail(model), ModelRequestError)
    assert server.stats.requests == 6
    assert model.snapshot().state == "closed"


def test_a_probe_ending_with_a_client_error_frees_the_slot(clock: ManualClock) -> None:
    store = InMemoryBreakerStore()
    down = breaker(ScriptedChatModel([DOWN]), clock, store=store)
    trip(down)
    clock.advance(30.0)
    rejected = FailingModel(ModelRequestError("bad request", model="m", status=400))
    log = CallLog()
    fail(breaker(rejected, clock, store=store), log)  # the probe: no verdict
    assert log.decisions[-1].reason == "primary probe gave no verdict; slot freed"
    assert down.snapshot().state == "half_open"
    fail(down)  # the next caller probes (and fails: re-open for longer)
    assert down.snapshot().open_for_s == 60.0


# -- Retry-After cool-down -----------------------------------------------------------------------


def test_retry_after_cools_the_deployment_down(
    clock: ManualClock, server: FaultServer, http_model: OpenAICompatChatModel
) -> None:
    server.set(error_rate=1.0, error="429", retry_after_s=7)
    model = breaker(http_model, clock)
    log = CallLog()
    assert isinstance(fail(model, log), ModelRateLimitedError)
    assert log.decisions[-1].reason == "primary cooling down for 7 s (Retry-After)"
    server.set(error_rate=0.0)
    clock.advance(6.9)
    error = fail(model)
    assert isinstance(error, CircuitOpenError)
    assert error.retry_after_s == pytest.approx(0.1)
    assert model.snapshot().state == "cooling"
    assert server.stats.requests == 1  # the cool-down made no call
    clock.advance(0.1)
    assert model.complete(request()).text == "Paris is the capital [1]."
    assert server.stats.requests == 2


# -- streams -------------------------------------------------------------------------------------


def test_a_stream_broken_midway_counts_as_a_failure(clock: ManualClock) -> None:
    broken = ScriptedFailure("unavailable", after_tokens=2, partial="Paris is the capital.")
    model = breaker(ScriptedChatModel([broken]), clock)
    for _ in range(3):
        received: list[str] = []
        with pytest.raises(ModelUnavailableError):
            for chunk in model.stream(request()):
                received.append(chunk.text_delta)
        assert received == ["Paris", " is"]
    assert model.snapshot().state == "open"


def test_an_interrupted_stream_error_counts_too(clock: ManualClock) -> None:
    model = breaker(FailingModel(StreamInterruptedError("cut", partial="Par")), clock)
    trip(model)
    assert model.snapshot().state == "open"


def test_a_stream_closed_early_by_the_consumer_counts_as_neither(clock: ManualClock) -> None:
    inner = ScriptedChatModel([DOWN, DOWN, "one two three four"])
    model = breaker(inner, clock)
    trip(model, 2)
    stream = model.stream(request())
    assert next(stream).text_delta == "one"
    stream.close()
    assert inner.cancelled == 1  # closing the wrapper cancelled the provider's generation
    assert model.snapshot().failures == 2  # not reset (no success), not increased


def test_a_stream_stopped_at_its_last_chunk_is_a_success(clock: ManualClock) -> None:
    model = breaker(ScriptedChatModel([DOWN, DOWN, DOWN, "back again"]), clock)
    trip(model)
    clock.advance(30.0)
    stream = model.stream(request())
    for chunk in stream:
        if chunk.finish_reason is not None:
            break  # a consumer that has the whole answer and does not ask for more
    stream.close()
    assert model.snapshot().state == "closed"


def test_stream_admission_waits_for_the_first_next(clock: ManualClock) -> None:
    inner = ScriptedChatModel([DOWN])
    model = breaker(inner, clock)
    trip(model)
    stream: Generator[ChatChunk, None, None] = model.stream(request())  # no error yet
    with pytest.raises(CircuitOpenError):
        next(stream)
    assert inner.calls == 3


def test_a_call_admitted_before_the_breaker_opened_cannot_close_it(clock: ManualClock) -> None:
    inner = ScriptedChatModel(["early answer", DOWN])
    model = breaker(inner, clock)
    early = model.stream(request())
    next(early)  # admitted while closed, still running
    trip(model)
    assert [c.text_delta for c in early] == [" answer"]  # it ends well, but too late to count
    assert model.snapshot().state == "open"


# -- the store -----------------------------------------------------------------------------------


def test_wrappers_sharing_a_store_share_the_state(clock: ManualClock) -> None:
    """Two replicas of one deployment behind one store: what one learns, the other obeys."""
    store = InMemoryBreakerStore()
    replica_a = breaker(ScriptedChatModel([DOWN]), clock, store=store)
    other = ScriptedChatModel(["fine"])
    replica_b = breaker(other, clock, store=store)
    trip(replica_a)
    assert isinstance(fail(replica_b), CircuitOpenError)
    assert other.calls == 0
    independent = CircuitBreakerChatModel(other, deployment="secondary", store=store, clock=clock)
    assert independent.complete(request()).text == "fine"


def test_snapshot_is_plain_data_for_readyz(clock: ManualClock) -> None:
    model = breaker(ScriptedChatModel([DOWN]), clock)
    trip(model)
    assert model.snapshot().to_dict() == {
        "deployment": "primary",
        "state": "open",
        "failures": 0,
        "calls": 0,
        "rate": 0.0,
        "opened_until": clock.now() + 30.0,
        "open_for_s": 30.0,
        "reopen_count": 0,
        "cooldown_until": None,
        "retry_after_s": 30.0,
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"consecutive_failures": 0},
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"window_s": 0.0},
        {"open_s": 60.0, "max_open_s": 30.0},
    ],
)
def test_policy_rejects_nonsense(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(**fields)  # type: ignore[arg-type]


# -- the BreakerStore contract (ragkeel.testing.contracts.breaker_store) over every store ---------


class TestInMemoryBreakerStore(BreakerStoreContract):
    @pytest.fixture
    def store(self) -> BreakerStore:
        return InMemoryBreakerStore()


class TestRedisBreakerStore(BreakerStoreContract):
    """The same contract over Redis (``gateway/redis_breaker_store.py``), on the session's real
    redis-server (``redis_url``); cross-process and outage tests: test_redis_breaker_store.py."""

    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[BreakerStore]:
        from ragkeel.gateway.redis_breaker_store import RedisBreakerStore
        from ragkeel.shared_state import connect

        shared = connect(redis_url, prefix="test:")
        yield RedisBreakerStore(shared)
        shared.close()

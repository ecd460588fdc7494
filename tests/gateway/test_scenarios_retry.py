"""Issue 5's gateway scenarios 2, 6 and 7, end to end over HTTP: ``RetryingChatModel`` around
``OpenAICompatChatModel`` against a ``FaultServer`` on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from ragkeel.clock import SYSTEM_CLOCK, ManualClock
from ragkeel.errors import (
    ChatModelError,
    DeadlineExceededError,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from ragkeel.gateway.base import ChatMessage, ChatRequest
from ragkeel.gateway.breaker import BreakerPolicy, CircuitBreakerChatModel
from ragkeel.gateway.providers.openai_compat import OpenAICompatChatModel
from ragkeel.gateway.retry import RetryingChatModel, RetryPolicy
from ragkeel.testing import FaultServer, FaultSettings

MESSAGES = (ChatMessage("user", "What is the capital of France?"),)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(seed=5) as fault_server:
        yield fault_server


def _client(server: FaultServer, timeout_s: float = 5.0) -> OpenAICompatChatModel:
    return OpenAICompatChatModel(server.base_url, "primary", api_key=None, timeout_s=timeout_s)


# -- scenario 2: 503 on 30 % of calls, no fallback, 2 retries ------------------------------


def test_scenario_2_one_retry_loop_turns_30_percent_503_into_97_3_percent_success(
    server: FaultServer,
) -> None:
    requests = 2_400
    server.set(error_rate=0.3, error="503")
    clock = ManualClock()  # backoff advances the clock instead of sleeping
    with _client(server) as client:
        # No RetryBudget: at 30 % failures a 20 % budget would (rightly) cut retries, and this
        # scenario measures the retry arithmetic alone: success = 1 - 0.3**3.
        model = RetryingChatModel(client, RetryPolicy(max_retries=2), clock=clock)

        def call(_: int) -> bool:
            try:
                model.complete(ChatRequest(MESSAGES))
                return True
            except ModelUnavailableError:
                return False

        with ThreadPoolExecutor(max_workers=8) as pool:
            outcomes = list(pool.map(call, range(requests)))
    success = sum(outcomes) / requests
    attempts = server.stats.requests
    # 1 - 0.3**3 = 0.973; sd of the rate over 2,400 requests is 0.0033, so +-1 % is 3 sd
    assert success == pytest.approx(0.973, abs=0.01)
    # each call: 1 attempt + 0.3 retries + 0.09 more = 1.39 (sd of the mean 0.013 here)
    assert attempts / requests == pytest.approx(1.39, abs=0.04)
    # exactly one retry loop: every server request is a first attempt or one of our retries
    # (a retrying HTTP client underneath would add requests no backoff sleep accounts for)
    assert attempts == requests + len(clock.sleeps)
    assert server.stats.outcome("503") + server.stats.outcome("ok") == attempts


# -- scenario 6: 400/401/403 are never retried and never move the breaker ------------------


@pytest.mark.parametrize("kind", ["400", "401", "403"])
def test_scenario_6_client_errors_are_never_retried_nor_counted_by_the_breaker(
    server: FaultServer, kind: str
) -> None:
    calls = 40
    server.set(error_rate=1.0, error=kind)
    clock = ManualClock()
    touchy = BreakerPolicy(consecutive_failures=1, failure_rate=0.01, min_calls=1)
    with _client(server) as client:
        breaker = CircuitBreakerChatModel(client, policy=touchy, clock=clock)
        model = RetryingChatModel(breaker, RetryPolicy(max_retries=5), clock=clock)
        for _ in range(calls):
            with pytest.raises(ModelRequestError) as info:
                model.complete(ChatRequest(MESSAGES))
            assert info.value.status == int(kind)
        assert server.stats.requests == calls  # one server request per call
        assert clock.sleeps == []
        snapshot = breaker.snapshot()
        assert (snapshot.state, snapshot.failures, snapshot.rate) == ("closed", 0, 0.0)

        # the control: one counted failure does open this breaker, so the above could fail
        server.set(error="503")
        with pytest.raises(ChatModelError):
            model.complete(ChatRequest(MESSAGES))
        assert breaker.snapshot().state == "open"


# -- scenario 7: slow provider, attempt timeout and deadline, real clock -------------------


@dataclass(frozen=True)
class Slow:
    response_s: float  # the provider's latency
    attempt_s: float  # per-attempt timeout
    deadline_s: float  # overall request deadline
    concurrent: int


def _slow_provider(server: FaultServer, slow: Slow) -> tuple[list[float], bool]:
    """Run ``slow.concurrent`` requests at once; return how far each ended past its deadline
    (negative: before it) and whether the server saw every connection closed while the client
    was still open (timed-out calls release their sockets; nothing waits for the pool to
    close). Every request must fail: the provider is slower than an attempt."""
    server.set(FaultSettings(base_latency_s=slow.response_s))
    policy = RetryPolicy(max_retries=5, base_delay_s=0.01, attempt_timeout_s=slow.attempt_s)

    def call(client: OpenAICompatChatModel) -> float:
        model = RetryingChatModel(client, policy)
        deadline = SYSTEM_CLOCK.now() + slow.deadline_s
        try:
            model.complete(ChatRequest(MESSAGES, deadline=deadline))
        except (ModelTimeoutError, DeadlineExceededError):
            return SYSTEM_CLOCK.now() - deadline
        raise AssertionError("a request succeeded against a provider slower than its timeout")

    with (
        _client(server, timeout_s=60.0) as client,
        ThreadPoolExecutor(max_workers=slow.concurrent) as pool,
    ):
        overruns = list(pool.map(call, [client] * slow.concurrent))
        return overruns, server.wait_idle(timeout_s=1.0)


def _eventually(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``predicate`` for at most ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _check_slow_provider(slow: Slow) -> None:
    threads_before = threading.active_count()
    server = FaultServer(seed=7).start()
    try:
        overruns, idle = _slow_provider(server, slow)
        assert max(overruns) <= 0.1, f"deadline exceeded by {max(overruns):.3f} s"
        assert idle, f"connections leaked: {server.stats}"
        # attempts end at their timeout (the last one at the deadline), not at the provider
        assert server.stats.requests <= slow.concurrent * (slow.deadline_s // slow.attempt_s + 1)
        assert server.stats.outcome("ok") == 0
    finally:
        server.stop()
    # no leaked threads: client pool, server handlers and the serving thread are all gone
    assert _eventually(lambda: threading.active_count() <= threads_before, 1.0), (
        threading.enumerate()
    )


def test_scenario_7_slow_provider_scaled_down() -> None:
    """The full-scale scenario (20 s / 10 s / 30 s) divided by 20: 1 s / 0.5 s / 1.5 s."""
    _check_slow_provider(Slow(response_s=1.0, attempt_s=0.5, deadline_s=1.5, concurrent=10))


@pytest.mark.slow
def test_scenario_7_slow_provider_full_scale() -> None:
    """Issue 5, scenario 7 as written: 20 s responses, 10 s attempts, 30 s deadline."""
    _check_slow_provider(Slow(response_s=20.0, attempt_s=10.0, deadline_s=30.0, concurrent=10))


def test_a_closed_retrying_stream_releases_its_connection(server: FaultServer) -> None:
    """Deadlines' "cancelled calls release their connections", for streams: closing the
    wrapper's iterator closes the HTTP response, and the server sees the hang-up at once."""
    server.set(reply="one two three four five six", token_delay_s=0.05)
    with _client(server) as client:
        stream = RetryingChatModel(client).stream(ChatRequest(MESSAGES))
        assert next(stream).text_delta == "one"
        stream.close()
        assert server.wait_idle(timeout_s=1.0), server.stats
        assert server.stats.by_outcome == {"client_gone": 1}

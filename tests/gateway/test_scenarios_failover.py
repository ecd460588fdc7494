"""Issue 5's failover scenarios 1, 3, 4, 5 and 8, end to end over HTTP: ``FaultServer`` (one per
deployment, on 127.0.0.1) <- ``OpenAICompatChatModel`` <- ``MeteredChatModel`` <-
``CircuitBreakerChatModel`` <- ``RetryingChatModel``, the deployments in a ``FallbackChatModel``:
the composition ``gateway/stack.py`` builds. Time is a ``ManualClock`` shared by every policy,
so backoffs, open periods and Retry-After cool-downs take no wall-clock time and are exact.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import pytest

from ragkeel.clock import ManualClock
from ragkeel.errors import ChatModelError, StreamInterruptedError
from ragkeel.gateway.base import ChatChunk, ChatMessage, ChatModel, ChatRequest, ChatResponse
from ragkeel.gateway.breaker import BreakerPolicy, CircuitBreakerChatModel
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.fallback import FallbackChatModel
from ragkeel.gateway.metering import MeteredChatModel
from ragkeel.gateway.providers.openai_compat import OpenAICompatChatModel
from ragkeel.gateway.retry import RetryingChatModel, RetryPolicy
from ragkeel.testing import FaultServer

THREADS = 8
ANSWER = "Paris is the capital of France and its largest city [1]."
RETRY_LOG = re.compile(r": retry (\d+)/\d+ after ([0-9.]+) s")


def ask() -> ChatRequest:
    return ChatRequest((ChatMessage("user", "What is the capital of France?"),))


def complete(model: ChatModel, log: CallLog | None = None) -> ChatResponse:
    """``model.complete(ask())``, recorded into ``log`` when one is given."""
    with recording(log) if log is not None else nullcontext():
        return model.complete(ask())


@dataclass
class Deployment:
    """One rung of the chain and the handles a test inspects."""

    server: FaultServer
    client: OpenAICompatChatModel
    breaker: CircuitBreakerChatModel
    model: RetryingChatModel


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def deploy(clock: ManualClock) -> Iterator[Callable[..., Deployment]]:
    """``deploy(name, breaker_policy, retry_policy)``: a fault server and the stack over it."""
    opened: list[Deployment] = []

    def make(
        name: str,
        breaker_policy: BreakerPolicy = BreakerPolicy(),
        retry_policy: RetryPolicy = RetryPolicy(max_retries=2),
    ) -> Deployment:
        server = FaultServer(seed=len(opened)).start()
        server.set(reply=ANSWER)
        client = OpenAICompatChatModel(server.base_url, "fault", api_key=None, timeout_s=2.0)
        metered = MeteredChatModel(client, deployment=name, clock=clock)
        breaker = CircuitBreakerChatModel(
            metered, deployment=name, policy=breaker_policy, clock=clock
        )
        retrying = RetryingChatModel(breaker, retry_policy, clock=clock, rng=random.Random(7))
        opened.append(Deployment(server, client, breaker, retrying))
        return opened[-1]

    yield make
    for deployment in opened:
        deployment.client.close()
        deployment.server.stop()


def chain(*deployments: Deployment, continue_interrupted: bool = True) -> FallbackChatModel:
    return FallbackChatModel(
        [d.model for d in deployments], continue_interrupted=continue_interrupted
    )


def run_concurrently(task: Callable[[int], bool], requests: int) -> int:
    """Run ``task(i)`` for ``i < requests`` on ``THREADS`` threads; the number that returned
    True. Bounded: every call has a 2 s HTTP timeout and the pool is joined."""
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return sum(pool.map(task, range(requests)))


# -- 1. primary 503 on 30 %, healthy fallback, 2 retries then fallback ------------------------

# Why these breaker thresholds: the scenario is about retries, so the breaker must not open on
# a 30 % error rate. With 2 retries the primary sees ~1.39 attempts a request, each failing
# with p = 0.3. 15 consecutive failures happen with p = 0.3**15 ~ 1.4e-8 per attempt (about
# 4e-5 over the ~2,800 attempts of the run), and a window rate >= 0.5 over >= 100 calls is
# ~4 standard deviations above 0.3 (P ~ 1e-5). The defaults (5 consecutive: 0.3**5 = 0.24 %
# per attempt) would open it several times in 2,000 requests, which is right in production
# (the fallback serves meanwhile) but would blur the retry arithmetic checked here. No retry
# budget: a 20 % budget cannot cover the 39 % retries a 30 % error rate needs, and the issue
# asks for "2 retries then fallback" on every request.
SCENARIO_1_BREAKER = BreakerPolicy(consecutive_failures=15, failure_rate=0.5, min_calls=100)


def scenario_1(deploy: Callable[..., Deployment], clock: ManualClock, requests: int) -> None:
    primary = deploy("primary", SCENARIO_1_BREAKER)
    fallback = deploy("fallback")
    primary.server.set(error_rate=0.3, error="503")
    model = chain(primary, fallback)
    logs = [CallLog() for _ in range(requests)]

    def one(i: int) -> bool:
        try:
            return complete(model, logs[i]).text == ANSWER
        except ChatModelError:
            return False

    succeeded = run_concurrently(one, requests)

    assert succeeded >= 0.999 * requests
    assert primary.breaker.snapshot().state == "closed"
    primary_attempts = primary.server.stats.requests
    assert primary_attempts <= 1.45 * requests
    served = [log.served_by for log in logs]
    assert served.count("fallback") == fallback.server.stats.requests  # one call per fallback
    assert served.count("primary") + served.count("fallback") == requests
    # every retry delay inside its full-jitter bounds: the sleeps the clock saw, and each
    # retry's number and delay as logged (3 decimals)
    retries = [
        (int(m[1]), float(m[2]))
        for log in logs
        for d in log.decisions
        if d.policy == "retry" and (m := RETRY_LOG.search(d.reason))
    ]
    assert len(retries) == len(clock.sleeps) == primary_attempts - requests
    for number, delay in retries:
        low, high = primary.model.delay_bounds(number)
        assert low <= delay <= high + 0.0005
    assert all(0.0 <= s <= primary.model.delay_bounds(2)[1] for s in clock.sleeps)
    assert sum(clock.sleeps) == pytest.approx(sum(d for _, d in retries), abs=0.0005 * requests)


def test_scenario_1_retries_then_fallback_small(
    deploy: Callable[..., Deployment], clock: ManualClock
) -> None:
    """The default-run sibling of the 2,000-request run: same checks on 400 requests (the
    1.45x bound is 2 standard deviations of the attempt mean above 1.39 at this size)."""
    scenario_1(deploy, clock, 400)


@pytest.mark.slow
def test_scenario_1_retries_then_fallback_2000(
    deploy: Callable[..., Deployment], clock: ManualClock
) -> None:
    scenario_1(deploy, clock, 2_000)


# -- 3. primary hard down: the breaker opens, then only probes reach it -------------------------


def primary_reached(deployment: Deployment) -> int:
    stats = deployment.server.stats
    return stats.requests + stats.refused  # refused: reset by the down server before reading


def test_scenario_3_hard_down_opens_the_breaker_and_only_probes_reach_it(
    deploy: Callable[..., Deployment], clock: ManualClock
) -> None:
    policy = BreakerPolicy(consecutive_failures=3, open_s=30.0, max_open_s=300.0)
    primary = deploy("primary", policy)
    fallback = deploy("fallback")
    primary.server.set(down=True)
    model = chain(primary, fallback)

    first = CallLog()
    assert complete(model, first).text == ANSWER  # 3 attempts fail, the breaker opens
    assert primary_reached(primary) == 3
    assert primary.breaker.snapshot().state == "open"
    assert "primary opened for 30 s after 3 consecutive failures" in [
        d.reason for d in first.decisions
    ]
    assert first.served_by == "fallback"

    for period in (30.0, 60.0, 120.0):
        sleeps = len(clock.sleeps)
        for _ in range(20):  # while open: no call, no backoff, the fallback answers
            log = CallLog()
            assert complete(model, log).text == ANSWER
            assert log.served_by == "fallback"
            rejected = [a for a in log.attempts if a.deployment == "primary"]
            assert [(a.outcome, a.code, a.latency_ms) for a in rejected] == [
                ("rejected", "CIRCUIT_OPEN", 0.0)
            ]
        assert len(clock.sleeps) == sleeps  # the open breaker added no backoff
        reached = primary_reached(primary)
        clock.advance(period)
        for _ in range(5):  # one probe per open period, the rest rejected
            assert complete(model).text == ANSWER
        assert primary_reached(primary) == reached + 1
        assert primary.breaker.snapshot().open_for_s == min(period * 2, 300.0)


# -- 4. half-open: exactly one probe even with concurrent callers --------------------------------


def test_scenario_4_half_open_one_probe_success_closes_failure_reopens_longer(
    deploy: Callable[..., Deployment], clock: ManualClock
) -> None:
    policy = BreakerPolicy(consecutive_failures=3, open_s=30.0, max_open_s=100.0)
    primary = deploy("primary", policy, RetryPolicy(max_retries=0))
    fallback = deploy("fallback")
    model = chain(primary, fallback)

    primary.server.set(error_rate=1.0, error="503")
    for _ in range(3):
        complete(model)
    assert primary.breaker.snapshot().state == "open"

    # failed probes re-open for longer: 30 -> 60 -> 100 (capped) -> 100
    for expected in (60.0, 100.0, 100.0):
        before = primary.server.stats.requests
        clock.advance(primary.breaker.snapshot().open_for_s - 0.001)
        complete(model)
        assert primary.server.stats.requests == before  # not yet
        clock.advance(0.001)
        complete(model)
        assert primary.server.stats.requests == before + 1  # the probe
        assert primary.breaker.snapshot().open_for_s == expected

    # the primary recovers but answers slowly: 8 concurrent callers, exactly one probe
    primary.server.reset_stats()
    primary.server.set(error_rate=0.0, base_latency_s=0.3)
    clock.advance(100.0)
    start = threading.Barrier(THREADS)

    def one(_: int) -> bool:
        log = CallLog()
        start.wait(timeout=2.0)
        return complete(model, log).text == ANSWER and log.served_by == "primary"

    assert run_concurrently(one, THREADS) == 1
    assert primary.server.stats.requests == 1
    snap = primary.breaker.snapshot()
    assert (snap.state, snap.open_for_s, snap.reopen_count) == ("closed", 0.0, 0)
    primary.server.set(base_latency_s=0.0)
    log = CallLog()
    complete(model, log)
    assert log.served_by == "primary"  # closed: the primary serves again


# -- 5. 429 with Retry-After: 7 -------------------------------------------------------------------


def test_scenario_5_retry_after_cools_the_deployment_down_while_others_serve(
    deploy: Callable[..., Deployment], clock: ManualClock
) -> None:
    # Retry-After 7 s is longer than this retry policy waits (5 s), so the retry loop raises
    # at once and the next rung serves instead of the request sleeping 7 s.
    a = deploy("a", BreakerPolicy(), RetryPolicy(max_retries=2, max_retry_after_s=5.0))
    b = deploy("b")
    model = chain(a, b)
    a.server.set(error_rate=1.0, error="429", retry_after_s=7)

    log = CallLog()
    assert complete(model, log).text == ANSWER
    assert log.served_by == "b"
    assert "a cooling down for 7 s (Retry-After)" in [d.reason for d in log.decisions]
    assert a.server.stats.requests == 1

    a.server.set(error_rate=0.0)  # a would answer now, but it asked for 7 s
    for _ in range(14):
        clock.advance(0.49)  # up to 6.86 s after the 429
        log = CallLog()
        assert complete(model, log).text == ANSWER
        assert log.served_by == "b"
    assert a.server.stats.requests == 1
    assert a.breaker.snapshot().state == "cooling"

    clock.advance(0.14)  # 7.0 s
    log = CallLog()
    assert complete(model, log).text == ANSWER
    assert log.served_by == "a"
    assert a.server.stats.requests == 2


# -- 8. disconnect after 30 % of the streamed tokens -------------------------------------------


LONG_ANSWER = (
    "The Eiffel Tower was built for the 1889 World's Fair in Paris and was at the time the "
    "tallest structure in the world, a title it held until 1930 [1]."
)
CONTINUATION = " and it is still the most visited paid monument in the world [2]."


def stream_text(model: FallbackChatModel, log: CallLog) -> tuple[str, list[ChatChunk]]:
    with recording(log):
        chunks = list(model.stream(ask()))
    return "".join(c.text_delta for c in chunks), chunks


def test_scenario_8_a_broken_stream_continues_on_the_next_deployment(
    deploy: Callable[..., Deployment],
) -> None:
    primary = deploy("primary")
    fallback = deploy("fallback")
    primary.server.set(reply=LONG_ANSWER, disconnect_after=0.3)
    fallback.server.set(reply=CONTINUATION)
    log = CallLog()

    text, chunks = stream_text(chain(primary, fallback), log)

    assert text.endswith(CONTINUATION)
    partial = text[: -len(CONTINUATION)]
    assert partial and LONG_ANSWER.startswith(partial) and len(partial) < 0.5 * len(LONG_ANSWER)
    assert (chunks[-1].model, chunks[-1].finish_reason) == ("fallback", "stop")
    assert (log.served_by, log.rung) == ("fallback", 1)
    assert (
        f"primary interrupted after {len(partial)} chars (MODEL_STREAM_INTERRUPTED); "
        "continued on fallback" in [d.reason for d in log.decisions]
    )
    assert [(a.deployment, a.outcome) for a in log.attempts] == [
        ("primary", "interrupted"),
        ("fallback", "ok"),
    ]
    assert primary.server.stats.outcome("disconnect") == 1
    assert primary.breaker.snapshot().failures == 1  # the breaker counted the interruption


def test_scenario_8_without_a_next_deployment_the_consumer_gets_an_explicit_error(
    deploy: Callable[..., Deployment],
) -> None:
    primary = deploy("primary")
    primary.server.set(reply=LONG_ANSWER, disconnect_after=0.3)
    received: list[ChatChunk] = []
    with recording(CallLog()), pytest.raises(StreamInterruptedError) as info:
        for chunk in chain(primary).stream(ask()):
            received.append(chunk)
    text = "".join(c.text_delta for c in received)
    assert text and info.value.partial == text and LONG_ANSWER.startswith(text)
    assert all(c.finish_reason is None for c in received)  # never a "finished" truncation
    assert primary.breaker.snapshot().failures == 1
    assert primary.server.stats.requests == 1  # text went out: not retried

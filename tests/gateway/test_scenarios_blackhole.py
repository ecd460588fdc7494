"""Issue 9's gateway against a black-holed provider, end to end over HTTP: ``build_gateway`` over
two ``FaultServer``s on 127.0.0.1, a primary that accepts connections and never answers
(``error="hang"``) or rate-limits with a long ``Retry-After``, and a healthy fallback.

What must hold: a timed-out attempt moves on to the next rung instead of being retried on the
same deployment (but is still retried on the last rung); a deployment's own ``timeout_s`` bounds
each attempt even when the request carries a longer ``timeout_s`` (the answer flow sends
``generation.model_timeout_s``); a ``Retry-After`` past the fallback patience sends the request
to the fallback at once. Timing bounds here are generous (the figures are in
``bench/gateway_blackhole.py``); the attempt counts are exact.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ragkeel.clock import SYSTEM_CLOCK, Clock, ManualClock
from ragkeel.container import deployments_of
from ragkeel.errors import ModelRateLimitedError, ModelTimeoutError
from ragkeel.gateway.base import ChatMessage, ChatRequest
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.pricing import PriceTable
from ragkeel.gateway.stack import GatewayStack, build_gateway
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer

PRICES = PriceTable.with_defaults()
ANSWER = "Paris is the capital [1]."
ATTEMPT_S = 0.5  # gateway.attempt_timeout_s of these tests (the run used 2 s)
MODEL_TIMEOUT_S = 60.0  # what the answer flow sends as request.timeout_s by default


@pytest.fixture
def servers() -> Iterator[tuple[FaultServer, FaultServer]]:
    with FaultServer(seed=1) as primary, FaultServer(seed=2) as fallback:
        primary.set(error_rate=1.0, error="hang")  # accepts, reads, never answers
        yield primary, fallback


def _stack(
    *servers: FaultServer,
    timeout_s: float = 30.0,
    clock: Clock = SYSTEM_CLOCK,
    **gateway: Any,
) -> GatewayStack:
    """The default gateway settings but for ``gateway`` over ``servers`` (in chain order:
    ``primary``, then ``fallback``); every deployment has ``timeout_s``."""
    names = ("primary", "fallback")
    deployments = [
        {"name": n, "model": "gpt-4o-mini", "base_url": s.base_url, "timeout_s": timeout_s}
        for n, s in zip(names, servers, strict=False)
    ]
    settings = load_settings(
        gateway={"deployments": deployments, **gateway}, generation={"provider": "openai"}
    )
    stack = build_gateway(settings.gateway, deployments_of(settings), PRICES, clock=clock)
    assert stack is not None
    return stack


def _request(clock: Clock = SYSTEM_CLOCK, deadline_s: float = 30.0) -> ChatRequest:
    return ChatRequest(
        (ChatMessage("user", "What is the capital of France?"),),
        max_tokens=32,
        timeout_s=MODEL_TIMEOUT_S,
        deadline=clock.now() + deadline_s,
    )


def _primary_attempts(log: CallLog | None) -> list[tuple[str, str | None]]:
    assert log is not None
    return [(a.outcome, a.code) for a in log.attempts if a.deployment == "primary"]


# -- a timeout moves on to the next rung ----------------------------------------------------


def test_a_timed_out_attempt_moves_on_to_the_fallback_instead_of_retrying(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    primary, fallback = servers
    stack = _stack(primary, fallback, attempt_timeout_s=ATTEMPT_S)  # 2 retries, breaker at 5
    try:
        started = time.monotonic()
        with recording(CallLog()) as first:
            assert stack.model.complete(_request()).text == ANSWER
        first_s = time.monotonic() - started
        # one attempt timeout, not three plus backoffs (>= 1.5 s before the fix)
        assert first_s < 3 * ATTEMPT_S, f"the first request took {first_s:.2f} s"
        assert _primary_attempts(first) == [("error", "MODEL_TIMEOUT")]
        assert first.served_by == "fallback"
        assert "primary: MODEL_TIMEOUT, not retried: fallback next" in [
            d.reason for d in first.decisions if d.policy == "retry"
        ]

        logs = []
        for _ in range(6):  # sequential, like the one client
            with recording(CallLog()) as log:
                assert stack.model.complete(_request()).text == ANSWER
            logs.append(log)
        # one timed-out call per request until the breaker opens (5 consecutive failures),
        # then no call at all
        assert [_primary_attempts(log) for log in logs] == [
            *[[("error", "MODEL_TIMEOUT")]] * 4,
            *[[("rejected", "CIRCUIT_OPEN")]] * 2,
        ]
        assert primary.stats.requests == 5
        assert fallback.stats.requests == 7
        assert {s["deployment"]: s["state"] for s in stack.readiness()}["primary"] == "open"
        assert primary.wait_idle(timeout_s=2.0), primary.stats  # the hung calls hung up
    finally:
        stack.close()


def test_a_timed_out_stream_moves_on_to_the_fallback_before_any_text(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    primary, fallback = servers
    stack = _stack(primary, fallback, attempt_timeout_s=ATTEMPT_S)
    try:
        with recording(CallLog()) as log:
            chunks = list(stack.model.stream(_request()))
        assert "".join(c.text_delta for c in chunks) == ANSWER
        assert chunks[-1].model == "fallback"
        assert _primary_attempts(log) == [("error", "MODEL_TIMEOUT")]
        assert primary.stats.requests == 1
    finally:
        stack.close()


def test_a_timeout_on_the_last_rung_is_still_retried(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    primary, _ = servers
    retry = {"max_retries": 2, "base_delay_s": 0.01, "max_delay_s": 0.02}
    stack = _stack(primary, attempt_timeout_s=0.2, retry=retry)  # no fallback
    try:
        log = CallLog()
        with recording(log), pytest.raises(ModelTimeoutError):
            stack.model.complete(_request())
        assert _primary_attempts(log) == [("error", "MODEL_TIMEOUT")] * 3
        assert primary.stats.requests == 3
    finally:
        stack.close()


# -- a deployment's own timeout_s bounds each attempt ---------------------------------------


def test_a_deployments_timeout_bounds_its_attempts_under_a_longer_request_timeout(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    """No ``gateway.attempt_timeout_s``; the request says 60 s (``model_timeout_s``), the
    deployment 0.5 s. Before the fix the primary's attempt waited for the whole 6 s deadline and
    the request failed with ``DEADLINE_EXCEEDED``; now the fallback answers after ~0.5 s."""
    primary, fallback = servers
    stack = _stack(primary, fallback, timeout_s=0.5)
    try:
        with recording(CallLog()) as log:
            assert stack.model.complete(_request(deadline_s=6.0)).text == ANSWER
        assert log.served_by == "fallback"
        (timed_out,) = [a for a in log.attempts if a.deployment == "primary"]
        assert timed_out.code == "MODEL_TIMEOUT"
        assert timed_out.latency_ms < 3_000, timed_out
    finally:
        stack.close()


# -- Retry-After past the patience goes to the fallback at once --------------------------------


def test_a_long_retry_after_goes_to_the_fallback_at_once(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    """Default retry settings (``max_retry_after_s`` 10): before the fix the request slept
    5 s twice on the 429ing primary before the fallback answered."""
    primary, fallback = servers
    primary.set(error="429", retry_after_s=5)
    clock = ManualClock()  # sleeps are recorded, not slept
    stack = _stack(primary, fallback, clock=clock)
    try:
        with recording(CallLog()) as log:
            assert stack.model.complete(_request(clock)).text == ANSWER
        assert log.served_by == "fallback"
        assert clock.sleeps == []
        assert primary.stats.requests == 1
        reasons = [d.reason for d in log.decisions]
        assert any("Retry-After 5 s is longer than the 1 s left to wait here" in r for r in reasons)
        assert "primary cooling down for 5 s (Retry-After)" in reasons

        with recording(CallLog()) as later:  # the primary asked for 5 s: not called meanwhile
            assert stack.model.complete(_request(clock)).text == ANSWER
        assert _primary_attempts(later) == [("rejected", "CIRCUIT_OPEN")]
        assert primary.stats.requests == 1
    finally:
        stack.close()


def test_the_fallback_patience_counts_every_retry_after_of_the_request(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    """0.6 s fits the 1 s patience once; a second 0.6 s would exceed what is left (0.4 s)."""
    primary, fallback = servers
    primary.set(error="429", retry_after_s=0.6)
    clock = ManualClock()
    stack = _stack(primary, fallback, clock=clock)
    try:
        with recording(CallLog()) as log:
            assert stack.model.complete(_request(clock)).text == ANSWER
        assert log.served_by == "fallback"
        assert clock.sleeps == [0.6]
        assert primary.stats.requests == 2
    finally:
        stack.close()


def test_without_a_fallback_a_retry_after_within_max_retry_after_is_waited_for(
    servers: tuple[FaultServer, FaultServer],
) -> None:
    primary, _ = servers
    primary.set(error="429", retry_after_s=5)
    clock = ManualClock()
    stack = _stack(primary, clock=clock)  # the last (only) rung: max_retry_after_s 10 applies
    try:
        with pytest.raises(ModelRateLimitedError):
            stack.model.complete(_request(clock))
        assert clock.sleeps == [5.0, 5.0]
        assert primary.stats.requests == 3
    finally:
        stack.close()

"""``RedisBreakerStore`` beyond the contract (test_breaker.py runs that): the one-probe lease
held across real separate processes, a breaker opened through one store instance refusing
through another (two replicas), and Redis stopped mid-test (the in-process fallback)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from processes import OwnRedis, race
from ragkeel.clock import WALL_CLOCK
from ragkeel.errors import CircuitOpenError, ModelUnavailableError
from ragkeel.gateway.base import ChatMessage, ChatRequest
from ragkeel.gateway.breaker import BreakerPolicy, CircuitBreakerChatModel
from ragkeel.gateway.breaker_store import BreakerState
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.gateway.redis_breaker_store import RedisBreakerStore
from ragkeel.shared_state import Outage, SharedState, connect

PROCESSES, TRIES = 6, 25
POLICY = BreakerPolicy(consecutive_failures=2, min_calls=1_000, open_s=30.0, probe_lease_s=120.0)
DOWN = ScriptedFailure("unavailable")


def request() -> ChatRequest:
    return ChatRequest((ChatMessage("user", "What is the capital of France?"),))


# one process: wait for the common start, then ask for a call TRIES times; print the verdicts
_CONTENDER = """
import json, sys, time
from ragkeel.gateway.breaker_store import BreakerPolicy, admit
from ragkeel.gateway.redis_breaker_store import RedisBreakerStore
from ragkeel.shared_state import connect
start, url = float(sys.argv[1]), sys.argv[2]
store = RedisBreakerStore(connect(url, prefix="test:"))
policy = BreakerPolicy(probe_lease_s=120.0)
time.sleep(max(start - time.time(), 0))
verdicts = []
for _ in range(int(sys.argv[3])):
    v = store.update("primary", lambda s: admit(s, time.time(), policy, "primary"))
    verdicts.append("probe" if v.ticket and v.ticket.probe else "call" if v.ticket else "refused")
print(json.dumps(verdicts))
"""


def shared_breaker(model: ScriptedChatModel, shared: SharedState) -> CircuitBreakerChatModel:
    """One replica's breaker on ``primary``: its state in Redis, its times on the wall clock."""
    store = RedisBreakerStore(shared)
    return CircuitBreakerChatModel(
        model, deployment="primary", policy=POLICY, store=store, clock=WALL_CLOCK
    )


@pytest.fixture
def shared(redis_url: str) -> Iterator[SharedState]:
    state = connect(redis_url, prefix="test:")
    yield state
    state.close()


def test_one_probe_across_processes(redis_url: str, shared: SharedState) -> None:
    """An open breaker whose open period is over: of PROCESSES x TRIES admissions racing in
    separate processes, exactly one gets the probe; every other one is refused."""
    store = RedisBreakerStore(shared)
    expired = BreakerState(phase="open", epoch=3, opened_until=time.time() - 1, open_for_s=30.0)
    store.update("primary", lambda _: (expired, None))
    outs = race(_CONTENDER, [[redis_url, str(TRIES)]] * PROCESSES)
    verdicts: list[str] = [v for out in outs for v in json.loads(out)]
    assert len(verdicts) == PROCESSES * TRIES
    assert verdicts.count("probe") == 1
    assert verdicts.count("refused") == PROCESSES * TRIES - 1
    assert store.get("primary").phase == "half_open"


def test_a_breaker_opened_on_one_replica_refuses_on_another(redis_url: str) -> None:
    a_state, b_state = connect(redis_url, prefix="test:"), connect(redis_url, prefix="test:")
    down = ScriptedChatModel([DOWN])
    healthy = ScriptedChatModel()
    a, b = shared_breaker(down, a_state), shared_breaker(healthy, b_state)
    try:
        for _ in range(2):
            with pytest.raises(ModelUnavailableError), recording(CallLog()):
                a.complete(request())
        assert a.snapshot().state == "open"
        with pytest.raises(CircuitOpenError), recording(CallLog()):
            b.complete(request())
        assert healthy.calls == 0  # refused on B without reaching the (healthy) deployment
        assert b.snapshot().state == "open"
    finally:
        a_state.close()
        b_state.close()


def test_redis_stopped_mid_test_falls_back_to_the_process_breaker(tmp_path: Path) -> None:
    """Our own redis-server, stopped mid-test: no call fails because of it; the breaker keeps
    protecting the deployment in-process, and each fallback is counted for the metric."""
    server = OwnRedis(tmp_path / "redis")
    counted: list[str] = []
    outage = Outage(pause_s=0.2, on_error=counted.append)
    shared = connect(server.url, prefix="test:", outage=outage, socket_timeout_s=0.5)
    model = ScriptedChatModel(["fine", DOWN])
    breaker = shared_breaker(model, shared)
    try:
        with recording(CallLog()):
            breaker.complete(request())  # a success through Redis: the shared state works
        assert counted == []
        server.stop()
        began = time.monotonic()
        for _ in range(2):  # the failures still count, in this process's own state
            with pytest.raises(ModelUnavailableError), recording(CallLog()):
                breaker.complete(request())
        with pytest.raises(CircuitOpenError), recording(CallLog()):
            breaker.complete(request())
        assert time.monotonic() - began < 5.0  # refused connections, no hanging
        assert counted and set(counted) == {"breakers"}
        assert outage.errors["breakers"] == len(counted)
    finally:
        shared.close()
        server.stop()

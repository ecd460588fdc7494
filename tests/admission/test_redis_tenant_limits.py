"""``TenantLimiter`` over Redis (``shared_storage``): a tenant's windows hold across limiters
with their own connections and across real processes; Redis stopped mid-test fails open, with
a log line and a count for the metric."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from processes import OwnRedis, race
from ragkeel.admission.tenant_limits import TenantLimiter, TenantLimits, shared_storage
from ragkeel.errors import RateLimitedError
from ragkeel.shared_state import Outage, SharedState, connect


@pytest.fixture
def replicas(redis_url: str) -> Iterator[tuple[SharedState, SharedState]]:
    a, b = connect(redis_url, prefix="test:"), connect(redis_url, prefix="test:")
    yield a, b
    a.close()
    b.close()


def limiter(shared: SharedState, limits: TenantLimits) -> TenantLimiter:
    return TenantLimiter(limits, storage=shared_storage(shared), outage=shared.outage)


def test_requests_per_window_hold_across_replicas(
    replicas: tuple[SharedState, SharedState],
) -> None:
    limits = TenantLimits(requests=3, window_s=60)
    a, b = (limiter(s, limits) for s in replicas)
    a.admit("t")
    b.admit("t")
    a.admit("t")
    for side in (a, b):
        with pytest.raises(RateLimitedError) as refused:
            side.admit("t")
        assert 0 < (refused.value.retry_after_s or 0) <= 60
    b.admit("other")  # tenants are independent


def test_tokens_used_are_shared(replicas: tuple[SharedState, SharedState]) -> None:
    limits = TenantLimits(requests=None, tokens=100, window_s=60)
    a, b = (limiter(s, limits) for s in replicas)
    a.settle(a.admit("t", estimated_tokens=60), 70)
    assert b.tokens_used("t") == 70
    with pytest.raises(RateLimitedError, match="70 used"):
        b.admit("t", estimated_tokens=40)
    b.admit("t", estimated_tokens=30)


_CALLER = """
import json, sys, time
from ragkeel.admission.tenant_limits import TenantLimiter, TenantLimits, shared_storage
from ragkeel.errors import RateLimitedError
from ragkeel.shared_state import connect
shared = connect(sys.argv[2], prefix="test:")
limiter = TenantLimiter(TenantLimits(requests=int(sys.argv[3]), window_s=60),
                        storage=shared_storage(shared), outage=shared.outage)
time.sleep(max(float(sys.argv[1]) - time.time(), 0))
admitted = 0
for _ in range(int(sys.argv[4])):
    try:
        limiter.admit("t")
        admitted += 1
    except RateLimitedError:
        pass
print(json.dumps({"admitted": admitted, "errors": shared.outage.errors["limits"]}))
"""


def test_requests_per_window_hold_across_processes(redis_url: str) -> None:
    processes, tries, limit = 4, 10, 17
    outs = race(_CALLER, [[redis_url, str(limit), str(tries)]] * processes)
    results = [json.loads(out) for out in outs]
    assert sum(r["admitted"] for r in results) == limit
    assert all(r["errors"] == 0 for r in results)


def test_redis_stopped_mid_test_fails_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = OwnRedis(tmp_path / "redis")
    counted: list[str] = []
    shared = connect(
        server.url, prefix="test:", outage=Outage(pause_s=0.2, on_error=counted.append)
    )
    limits = TenantLimiter(
        TenantLimits(requests=2, tokens=1_000, window_s=60),
        storage=shared_storage(shared),
        outage=shared.outage,
    )
    try:
        limits.admit("t")
        limits.admit("t")
        with pytest.raises(RateLimitedError):
            limits.admit("t")  # Redis up: the limit holds
        server.stop()
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="ragkeel.shared_state"):
            for _ in range(5):  # Redis down: admitted (fail open), never an exception
                limits.settle(limits.admit("t", estimated_tokens=10), 10)
        assert time.monotonic() - began < 5.0
        assert counted and set(counted) == {"limits"}
        assert any("unreachable for limits" in r.getMessage() for r in caplog.records)
        assert limits.tokens_used("t") == 0  # nothing could be read: none counted
    finally:
        shared.close()
        server.stop()


def test_a_hung_redis_costs_one_timeout_then_nothing(tmp_path: Path) -> None:
    """Redis frozen (SIGSTOP), not gone: the first admission waits out the socket timeout (and
    its one retry), later ones skip Redis during the pause; all are admitted."""
    server = OwnRedis(tmp_path / "redis")
    shared = connect(server.url, prefix="test:", socket_timeout_s=0.2, outage=Outage(pause_s=30.0))
    limits = TenantLimiter(
        TenantLimits(requests=100), storage=shared_storage(shared), outage=shared.outage
    )
    try:
        limits.admit("t")
        os.kill(server.pid, signal.SIGSTOP)
        began = time.monotonic()
        limits.admit("t")
        first = time.monotonic() - began
        began = time.monotonic()
        for _ in range(20):
            limits.admit("t")
        rest = time.monotonic() - began
        assert first < 2.0  # bounded by the timeouts, not hanging
        assert rest < first  # 20 admissions during the pause: no Redis call at all
        assert shared.outage.errors["limits"] == 21
    finally:
        os.kill(server.pid, signal.SIGCONT)
        shared.close()
        server.stop()

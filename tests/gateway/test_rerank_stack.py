"""The reranker behind the gateway's policies (``build_reranker``: retry → breaker → metering →
``RemoteReranker``) against ``FaultServer`` on 127.0.0.1: the contract still holds, a 503 is
retried with the gateway's backoff, the breaker opens after repeated failures and stops calling
the server, a probe closes it again, every attempt and decision lands in the call log, and the
deadline bounds a hung server. The clocks are ``ManualClock``s: no test sleeps on a backoff."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ragkeel.clock import SYSTEM_CLOCK, Clock, ManualClock
from ragkeel.errors import (
    CircuitOpenError,
    DeadlineExceededError,
    ModelUnavailableError,
    RerankResponseError,
)
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.rerank import Reranker, RerankRequest
from ragkeel.gateway.stack import RerankStack, build_reranker
from ragkeel.settings import GatewaySettings, RerankSettings
from ragkeel.testing import FaultServer
from ragkeel.testing.contracts.reranker import DOCUMENTS, QUERY, RerankerContract


class RecoveringClock(ManualClock):
    """A ``ManualClock`` during whose sleeps the server comes back: the first attempt fails,
    the one after the backoff is answered."""

    def __init__(self, server: FaultServer) -> None:
        super().__init__()
        self.server = server

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.server.set(error_rate=0.0)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault_server:
        yield fault_server


def stack(
    server: FaultServer,
    clock: Clock | None = None,
    *,
    max_retries: int = 1,
    failures: int = 3,
) -> RerankStack:
    rerank = RerankSettings(
        provider="remote",
        shape="tei",
        url=f"http://127.0.0.1:{server.port}/rerank",
        timeout_s=1.0,
        max_retries=max_retries,
    )
    gateway = GatewaySettings(
        breaker={"consecutive_failures": failures, "open_s": 30.0, "max_open_s": 60.0},
        retry={"base_delay_s": 0.2, "max_delay_s": 1.0},
    )
    built = build_reranker(rerank, gateway, clock=clock or ManualClock())
    assert built is not None
    return built


class TestRerankerBehindTheGateway(RerankerContract):
    @pytest.fixture
    def reranker(self, server: FaultServer) -> Iterator[Reranker]:
        built = stack(server)
        yield built.model
        built.close()

    @pytest.fixture
    def failing_reranker(self, server: FaultServer) -> Iterator[Reranker]:
        server.set(down=True)
        built = stack(server)
        yield built.model
        built.close()


def test_off_builds_nothing() -> None:
    assert build_reranker(RerankSettings(), GatewaySettings()) is None


def test_a_503_is_retried_with_the_gateways_backoff(server: FaultServer) -> None:
    server.set(error_rate=1.0, error="503")
    clock = RecoveringClock(server)
    built, log = stack(server, clock), CallLog()
    with recording(log):
        response = built.model.rerank(RerankRequest(QUERY, DOCUMENTS))
    built.close()
    assert response.ranking[0].index == 1
    assert server.stats.by_outcome == {"503": 1, "ok": 1}
    assert len(clock.sleeps) == 1 and 0.0 <= clock.sleeps[0] <= 0.2  # full jitter, retry 1
    assert [(a.outcome, a.code, a.status) for a in log.attempts] == [
        ("error", "MODEL_UNAVAILABLE", 503),
        ("ok", None, None),
    ]
    assert [d.policy for d in log.decisions] == ["retry"]
    assert all(a.deployment == "rerank:tei" for a in log.attempts)


def test_the_breaker_opens_then_refuses_without_calling(server: FaultServer) -> None:
    server.set(error_rate=1.0, error="503")
    clock = ManualClock()
    built = stack(server, clock, max_retries=0, failures=2)
    for _ in range(2):
        with pytest.raises(ModelUnavailableError):
            built.model.rerank(RerankRequest(QUERY, DOCUMENTS))
    assert built.readiness()["state"] == "open"
    sent = server.stats.requests
    log = CallLog()
    with recording(log), pytest.raises(CircuitOpenError):
        built.model.rerank(RerankRequest(QUERY, DOCUMENTS))
    assert server.stats.requests == sent  # refused without a call
    assert [(a.outcome, a.code) for a in log.attempts] == [("rejected", "CIRCUIT_OPEN")]

    server.set(error_rate=0.0)
    clock.advance(30.0)  # the open period ends: one probe goes through and closes it
    log = CallLog()
    with recording(log):
        assert built.model.rerank(RerankRequest(QUERY, DOCUMENTS)).ranking
    assert built.readiness()["state"] == "closed"
    assert any("closed" in d.reason for d in log.decisions if d.policy == "breaker")
    built.close()


def test_a_malformed_body_counts_for_the_breaker_and_is_not_retried(server: FaultServer) -> None:
    server.set(rerank_fault="nan_score")
    built = stack(server, max_retries=2, failures=2)
    for _ in range(2):
        with pytest.raises(RerankResponseError):
            built.model.rerank(RerankRequest(QUERY, DOCUMENTS))
    assert server.stats.requests == 2  # one attempt each: not retried
    assert built.readiness()["state"] == "open"
    built.close()


def test_the_deadline_bounds_a_hung_server(server: FaultServer) -> None:
    server.set(error_rate=1.0, error="hang")
    built = stack(server, SYSTEM_CLOCK, max_retries=3)
    # 0.3 s to the deadline: the first attempt's 1 s timeout is cut to it, and after it no
    # backoff and no other attempt fits
    started = time.monotonic()
    request = RerankRequest(QUERY, DOCUMENTS, deadline=SYSTEM_CLOCK.now() + 0.3)
    with pytest.raises(DeadlineExceededError):
        built.model.rerank(request)
    assert time.monotonic() - started < 1.0
    assert server.stats.requests == 1
    built.close()
    assert server.wait_idle()

"""Shared state from settings alone (``redis.url``): two apps, each over its own container (two
replicas in one process; the cluster tests run real separate API processes), share a tenant's
rate limit and the breakers through the session's Redis; with our own Redis stopped mid-test,
answers still come back (limits open, paid calls refused to the extractive answer with
BUDGET_UNAVAILABLE, never a 500), and /metrics counts each use's fallbacks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corpus import TEST_GATE
from processes import OwnRedis
from ragkeel.admission.redis_accounts import RedisCostAccounts
from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.gateway.redis_breaker_store import RedisBreakerStore
from ragkeel.settings import Settings, load_settings
from ragkeel.testing import FaultServer

from .conftest import COLLECTION, ON_TOPIC
from .test_metrics import scrape, value

# "cache": false: every ask goes to the gateway (a repeat would be an answer-cache hit, issue 14)
ASK = {"question": ON_TOPIC, "collection": COLLECTION, "cache": False}


def replica_settings(home: Path, redis: dict[str, Any], **gateway: Any) -> Settings:
    return load_settings(
        home=home,
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
        generation={"gate_threshold": TEST_GATE, "provider": "openai"},
        gateway=gateway,
        redis=redis,
    )


def deployments(*servers: FaultServer) -> list[dict[str, Any]]:
    return [
        {"name": f"d{i}", "model": "gpt-4o-mini", "base_url": s.base_url, "timeout_s": 5}
        for i, s in enumerate(servers)
    ]


Replicas = Callable[..., list[TestClient]]


@pytest.fixture
def replicas(tmp_path: Path, corpus: Path) -> Iterator[Replicas]:
    """``replicas(redis, **gateway)``: two apps over their own containers (own homes), with the
    corpus ingested in each, closed at the end of the test."""
    with ExitStack() as stack:

        def make(redis: dict[str, Any], **gateway: Any) -> list[TestClient]:
            clients = []
            for name in ("a", "b"):
                settings = replica_settings(tmp_path / name, redis, **gateway)
                container = stack.enter_context(Container(settings))
                assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
                clients.append(stack.enter_context(TestClient(create_app(container))))
            return clients

        yield make


def test_the_settings_alone_choose_the_shared_backends(tmp_path: Path, redis_url: str) -> None:
    settings = replica_settings(
        tmp_path, {"url": redis_url}, limits={"requests_per_minute": 5, "cost_per_day": 1.0}
    )
    with Container(settings) as c:
        assert isinstance(c.accounts, RedisCostAccounts)
        assert c.admission.limiter is not None
        assert c.gateway is not None
        assert all(isinstance(b.breaker._store, RedisBreakerStore) for b in c.gateway.breakers)
    with Container(replica_settings(tmp_path, {})) as c:  # no redis.url: as before
        assert c.shared_state is None and not isinstance(c.accounts, RedisCostAccounts)


def test_a_tenant_limit_holds_across_replicas(
    replicas: Replicas, redis_url: str, servers: tuple[FaultServer, FaultServer]
) -> None:
    limits = {"requests_per_minute": 2}
    a, b = replicas({"url": redis_url}, deployments=deployments(*servers), limits=limits)
    codes = [c.post("/v1/query", json=ASK).status_code for c in (a, b, a, b)]
    assert codes == [200, 200, 429, 429]


def test_a_breaker_opened_on_one_replica_routes_the_other_to_the_fallback(
    replicas: Replicas, redis_url: str, servers: tuple[FaultServer, FaultServer]
) -> None:
    primary, backup = servers
    primary.set(down=True)
    a, b = replicas(
        {"url": redis_url},
        deployments=deployments(primary, backup),
        retry={"max_retries": 1, "base_delay_s": 0.001, "max_delay_s": 0.002},
        breaker={"consecutive_failures": 2, "open_s": 60, "max_open_s": 60},
    )
    assert a.post("/v1/query", json=ASK).json()["served_by"] == "d1"  # d0 failed twice: open
    seen_by_primary = primary.stats.requests
    assert b.post("/v1/query", json=ASK).json()["served_by"] == "d1"
    on_b = scrape(b)
    assert primary.stats.requests == seen_by_primary  # B never tried the open deployment
    assert value(on_b, "ragkeel_gateway_attempts_total", deployment="d0", outcome="rejected") == 1
    assert value(on_b, "ragkeel_breaker_state", deployment="d0", state="open") == 1


def test_redis_stopped_mid_test_answers_still_come_back(
    replicas: Replicas, tmp_path: Path, servers: tuple[FaultServer, FaultServer]
) -> None:
    server = OwnRedis(tmp_path / "redis")
    try:
        a, _ = replicas(
            {"url": server.url, "retry_after_failure_s": 0.2},
            deployments=deployments(servers[0]),
            limits={"requests_per_minute": 100, "cost_per_day": 1.0},
        )
        first = a.post("/v1/query", json=ASK)
        assert first.status_code == 200 and first.json()["served_by"] == "d0"
        assert a.get("/readyz").json()["shared_state"] == {"configured": True, "reachable": True}
        server.stop()
        r = a.post("/v1/query", json=ASK)
        samples = scrape(a)
        ready = a.get("/readyz")
    finally:
        server.stop()
    assert ready.status_code == 200  # still serving, degraded
    assert ready.json()["degraded_reason"] == "SHARED_STATE_UNAVAILABLE"
    assert ready.json()["shared_state"] == {"configured": True, "reachable": False}
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["degraded"] is True and body["degraded_reason"] == "BUDGET_UNAVAILABLE"
    assert body["mode"] == "extractive"
    assert value(samples, "ragkeel_shared_state_errors_total", use="limits") >= 1
    assert value(samples, "ragkeel_shared_state_errors_total", use="accounts") >= 1

"""The API over a real gateway: remote deployments are ``FaultServer``s on 127.0.0.1. A down
primary is skipped by the breaker (``/readyz`` shows it open), the backup answers, and the
answer says which rung served it; with every deployment down the answer is extractive and
``/readyz`` says ``CIRCUIT_OPEN``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragkeel.api.app import create_app
from ragkeel.container import Container
from ragkeel.gateway.testing import FaultServer
from ragkeel.observability.trace_store import SqliteTraceStore
from ragkeel.settings import load_settings

from .conftest import COLLECTION, ON_TOPIC, TEST_GATE


@pytest.fixture
def servers() -> Iterator[tuple[FaultServer, FaultServer]]:
    with FaultServer(seed=3) as a, FaultServer(seed=4) as b:
        a.set(reply="Rotate every API key every ninety days [1].")
        b.set(reply="Rotate every API key every ninety days [1].")
        yield a, b


def _container(home: Path, corpus: Path, *urls: str) -> Container:
    deployments: list[dict[str, Any]] = [
        {"name": f"d{i}", "model": "gpt-4o-mini", "base_url": url, "timeout_s": 5}
        for i, url in enumerate(urls)
    ]
    settings = load_settings(
        home=home,
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
        generation={"gate_threshold": TEST_GATE, "provider": "openai"},
        gateway={
            "deployments": deployments,
            "retry": {"max_retries": 1, "base_delay_s": 0.001, "max_delay_s": 0.002},
            "breaker": {"consecutive_failures": 2, "open_s": 60, "max_open_s": 60},
        },
    )
    container = Container(settings)
    assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
    return container


def _ask(client: TestClient) -> dict[str, Any]:
    r = client.post("/v1/query", json={"question": ON_TOPIC, "collection": COLLECTION})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_down_primary_backup_answers_and_readyz_shows_the_open_breaker(
    tmp_path: Path, corpus: Path, servers: tuple[FaultServer, FaultServer]
) -> None:
    primary, backup = servers
    primary.set(down=True)
    container = _container(tmp_path / "home", corpus, primary.base_url, backup.base_url)
    with TestClient(create_app(container)) as client:
        for _ in range(3):
            answer = _ask(client)
            assert answer["mode"] == "generative" and answer["served_by"] == "d1"
            assert answer["cost"] > 0  # gpt-4o-mini's list price, metered per call
        assert answer["gateway"]["attempts"][0]["code"] == "CIRCUIT_OPEN"  # no call made
        ready = client.get("/readyz").json()
        states = {d["deployment"]: d["state"] for d in ready["deployments"]}
        assert states == {"d0": "open", "d1": "closed"} and not ready["degraded"]
    traces = SqliteTraceStore(container.settings.trace_store_path)
    stored = traces.get(answer["trace_id"])
    traces.close()
    assert stored is not None and stored.gateway is not None
    assert stored.gateway["served_by"] == "d1" and stored.gateway["rung"] == 1


def test_everything_down_answers_extractively_and_readyz_says_circuit_open(
    tmp_path: Path, corpus: Path, servers: tuple[FaultServer, FaultServer]
) -> None:
    a, b = servers
    a.set(down=True)
    b.set(error_rate=1.0, error="503")
    container = _container(tmp_path / "home", corpus, a.base_url, b.base_url)
    with TestClient(create_app(container)) as client:
        for _ in range(2):
            answer = _ask(client)
        assert answer["mode"] == "extractive" and answer["degraded"]
        assert answer["served_by"] == "extractive" and answer["citations"]
        ready = client.get("/readyz").json()
        assert ready["degraded"] and ready["degraded_reason"] == "CIRCUIT_OPEN"

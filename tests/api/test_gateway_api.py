"""The API over a real gateway: remote deployments are ``FaultServer``s on 127.0.0.1. A down
primary is skipped by the breaker (``/readyz`` shows it open), the backup answers, and the
answer says which rung served it; with every deployment down the answer is extractive and
``/readyz`` says ``CIRCUIT_OPEN``. ``/v1/chat/completions`` says which rung served it too, and a
black-holed primary costs one attempt of its own ``timeout_s`` before the backup answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragkeel.api.app import create_app
from ragkeel.container import Container
from ragkeel.observability.trace_store import SqliteTraceStore
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer

from .conftest import COLLECTION, ON_TOPIC, TEST_GATE


@pytest.fixture
def servers() -> Iterator[tuple[FaultServer, FaultServer]]:
    with FaultServer(seed=3) as a, FaultServer(seed=4) as b:
        a.set(reply="Rotate every API key every ninety days [1].")
        b.set(reply="Rotate every API key every ninety days [1].")
        yield a, b


def _container(
    home: Path, corpus: Path, *urls: str, timeout_s: float = 5, **gateway: Any
) -> Container:
    deployments: list[dict[str, Any]] = [
        {"name": f"d{i}", "model": "gpt-4o-mini", "base_url": url, "timeout_s": timeout_s}
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
            **gateway,
        },
        cache={"enabled": False},  # every question to the gateway, repeats too (issue 14)
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


def test_chat_completions_say_which_rung_served_and_what_the_gateway_did(
    tmp_path: Path, corpus: Path, servers: tuple[FaultServer, FaultServer]
) -> None:
    primary, backup = servers
    primary.set(down=True)
    container = _container(tmp_path / "home", corpus, primary.base_url, backup.base_url)
    body = {"messages": [{"role": "user", "content": ON_TOPIC}], "collection": COLLECTION}
    with TestClient(create_app(container)) as client:
        r = client.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        extras = r.json()["ragkeel"]
        assert extras["served_by"] == "d1"
        gateway = extras["gateway"]
        assert gateway["served_by"] == "d1" and gateway["rung"] == 1
        assert [a["deployment"] for a in gateway["attempts"]][-1] == "d1"
        assert any(d["policy"] == "fallback" for d in gateway["decisions"])

        r = client.post("/v1/chat/completions", json={**body, "stream": True})
        assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n")
        events = [json.loads(b[len("data: ") :]) for b in r.text.strip().split("\n\n")[:-1]]
        last = events[-1]
        assert last["choices"][0]["finish_reason"] == "stop"
        assert last["ragkeel"]["served_by"] == "d1"
        assert last["ragkeel"]["gateway"]["served_by"] == "d1"
        assert "sources" in events[1]["ragkeel"]  # sources first (issue 14), then nothing
        assert all("ragkeel" not in e for e in events[2:-1])


def test_a_black_holed_primary_costs_one_attempt_of_its_own_timeout(
    tmp_path: Path, corpus: Path, servers: tuple[FaultServer, FaultServer]
) -> None:
    """The primary accepts connections and never answers; its ``timeout_s`` is 0.5 s and
    ``generation.model_timeout_s`` is the default 60 s. Before the fix, the attempt waited for
    the whole request deadline (here 8 s) and the answer was extractive; now one 0.5 s attempt
    times out, it is not retried, and the backup answers."""
    primary, backup = servers
    primary.set(error_rate=1.0, error="hang")
    container = _container(
        tmp_path / "home",
        corpus,
        primary.base_url,
        backup.base_url,
        timeout_s=0.5,
        request_deadline_s=8,
    )
    with TestClient(create_app(container)) as client:
        answer = _ask(client)
    assert answer["mode"] == "generative" and answer["served_by"] == "d1"
    primary_attempts = [a for a in answer["gateway"]["attempts"] if a["deployment"] == "d0"]
    assert [a["code"] for a in primary_attempts] == ["MODEL_TIMEOUT"]
    assert primary_attempts[0]["latency_ms"] < 4_000
    assert primary.stats.requests == 1

"""What a client reads of a failure behind the service is a fixed, client-safe sentence per
error code: the gateway's own messages name internal URLs, hosts and paths
("http://10.0.0.5:8080/v1/chat/completions returned HTTP 503"). Those stay in the trace.

The provider is a real fault server on 127.0.0.1; its address must not appear in any byte a
client receives (JSON answers, server-sent events, OpenAI-compatible chunks, problems)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragkeel.api.app import create_app
from ragkeel.api.problems import client_message
from ragkeel.container import Container
from ragkeel.observability.trace_store import SqliteTraceStore
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer

from .conftest import COLLECTION, ON_TOPIC, TEST_GATE, sse_events

REPLY = "Rotate every API key every ninety days [1]."
FAULTS: dict[str, dict[str, Any]] = {
    "http-503": {"error_rate": 1.0, "error": "503"},
    "http-400": {"error_rate": 1.0, "error": "400"},
    "reset": {"error_rate": 1.0, "error": "reset"},
    "down": {"down": True},
    "cut-mid-stream": {"disconnect_after": 0.5},
}


@pytest.fixture
def provider() -> Iterator[FaultServer]:
    with FaultServer(seed=7) as server:
        server.set(reply=REPLY)
        yield server


def _container(home: Path, corpus: Path, url: str) -> Container:
    settings = load_settings(
        home=home,
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
        generation={"gate_threshold": TEST_GATE, "provider": "openai"},
        gateway={
            "deployments": [
                {"name": "d0", "model": "gpt-4o-mini", "base_url": url, "timeout_s": 5}
            ],
            "retry": {"max_retries": 0},
            "breaker": {"consecutive_failures": 100},
        },
    )
    container = Container(settings)
    assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
    return container


def _client_bytes(client: TestClient) -> list[tuple[str, bytes]]:
    """Every byte a client gets for the same question over the four answer paths."""
    out = []
    for stream in (False, True):
        r = client.post("/v1/query", json={"question": ON_TOPIC, "stream": stream})
        assert r.status_code == 200, r.text
        out.append((f"query stream={stream}", r.content))
        chat = {"messages": [{"role": "user", "content": ON_TOPIC}], "stream": stream}
        r = client.post("/v1/chat/completions", json=chat)
        assert r.status_code == 200, r.text
        out.append((f"chat stream={stream}", r.content))
    return out


@pytest.mark.parametrize("fault", FAULTS)
def test_gateway_failures_reach_clients_without_internal_addresses(
    tmp_path: Path, corpus: Path, provider: FaultServer, fault: str
) -> None:
    provider.set(reply=REPLY, **FAULTS[fault])
    container = _container(tmp_path / "home", corpus, provider.base_url)
    address = f"127.0.0.1:{provider.port}"
    with TestClient(create_app(container)) as client:
        seen = _client_bytes(client)
        answer = client.post("/v1/query", json={"question": ON_TOPIC}).json()
    for where, raw in seen:
        assert address.encode() not in raw, (where, raw.decode(errors="replace"))
        assert b"/chat/completions" not in raw, where
    assert answer["degraded"] and answer["degraded_reason"]
    assert answer["degraded_detail"] == client_message(answer["degraded_reason"], "")
    traces = SqliteTraceStore(container.settings.trace_store_path)  # the app closed its own
    stored = traces.get(answer["trace_id"])
    traces.close()
    assert stored is not None and stored.degraded_detail is not None
    assert stored.degraded_detail != answer["degraded_detail"]  # the operator's view is whole
    if fault != "cut-mid-stream":  # (the fallback's own message for a cut names no address)
        assert address in stored.degraded_detail


def test_streamed_errors_carry_the_client_safe_message(
    tmp_path: Path, corpus: Path, provider: FaultServer
) -> None:
    provider.set(reply=REPLY, disconnect_after=0.5)
    container = _container(tmp_path / "home", corpus, provider.base_url)
    with TestClient(create_app(container)) as client:
        r = client.post("/v1/query", json={"question": ON_TOPIC, "stream": True})
    events = dict(sse_events(r.text))
    assert '"code":"MODEL_STREAM_INTERRUPTED"' in events["error"].replace(" ", "")
    assert client_message("MODEL_STREAM_INTERRUPTED", "") in events["error"]


def test_client_message_keeps_what_the_client_caused_and_redacts_addresses() -> None:
    internal = "http://10.0.0.5:8080/v1/chat/completions returned HTTP 503: upstream 10.0.0.7 down"
    for code in ("MODEL_UNAVAILABLE", "MODEL_TIMEOUT", "MODEL_MISSING", "STORE_ERROR", "X_NEW"):
        safe = client_message(code, internal)
        assert "10.0.0" not in safe and "http" not in safe and safe, (code, safe)
    budget = "max_tokens 40 leaves no room for a context: the prompt alone takes 190 tokens"
    assert client_message("BUDGET_EXCEEDED", budget) == budget
    assert client_message("QUERY_INVALID", "the question is empty") == "the question is empty"

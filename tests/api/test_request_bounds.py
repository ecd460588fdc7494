"""Unbounded consumption (issue 11, OWASP LLM10): every knob a request turns is bounded, and a
request past a bound is refused fast, with a stable code, before any retrieval or model call —
body size (413), question length, ``k`` and ``max_tokens`` (422), JSON nesting (400); streams
per caller (429) are in test_stream_limits.py. Body size and question length are settings
(``api_limits``) the container hands the app. Over the real app; the scripted model counts the
calls that reach it (none may)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragkeel.api import create_app
from ragkeel.api.request_limits import MAX_BODY_BYTES, MAX_JSON_DEPTH, MAX_QUESTION_CHARS, Limits
from ragkeel.container import Container
from ragkeel.settings import load_settings

from .conftest import ON_TOPIC, Api

REFUSAL_BUDGET_S = 0.5  # generous for a loaded 2-core box; each refusal is microseconds of work
CHAT = "/v1/chat/completions"
LONG = "why " * (MAX_QUESTION_CHARS // 4 + 1)


def _chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **extra}


CASES = [
    pytest.param("POST", "/v1/query", {"question": LONG}, 422, "QUESTION_TOO_LONG", id="question"),
    pytest.param("POST", CHAT, _chat(LONG), 422, "QUESTION_TOO_LONG", id="chat-question"),
    pytest.param(
        "GET", "/v1/search", {"q": LONG, "k": 3}, 422, "QUESTION_TOO_LONG", id="search-query"
    ),
    pytest.param(
        "POST", "/v1/query", {"question": ON_TOPIC, "k": 101}, 422, "VALIDATION_ERROR", id="k"
    ),
    pytest.param("POST", CHAT, _chat(ON_TOPIC, k=101), 422, "VALIDATION_ERROR", id="chat-k"),
    pytest.param(
        "GET", "/v1/search", {"q": ON_TOPIC, "k": 1001}, 422, "VALIDATION_ERROR", id="search-k"
    ),
    pytest.param(
        "POST",
        "/v1/query",
        {"question": ON_TOPIC, "max_tokens": 1_000_001},
        422,
        "VALIDATION_ERROR",
        id="max_tokens",
    ),
    pytest.param(
        "POST",
        CHAT,
        _chat(ON_TOPIC, max_tokens=1_000_001),
        422,
        "VALIDATION_ERROR",
        id="chat-max_tokens",
    ),
    pytest.param(
        "POST",
        CHAT,
        _chat(ON_TOPIC, max_completion_tokens=0),
        422,
        "VALIDATION_ERROR",
        id="chat-max_completion_tokens",
    ),
    pytest.param(
        "POST",
        CHAT,
        _chat(ON_TOPIC, max_tokens="many"),
        422,
        "VALIDATION_ERROR",
        id="chat-max_tokens-type",
    ),
    pytest.param(
        "GET",
        "/v1/documents",
        {"limit": 1001},
        422,
        "VALIDATION_ERROR",
        id="document-list-limit",
    ),
]


@pytest.mark.parametrize(("method", "route", "payload", "status", "code"), CASES)
def test_each_bound_is_refused_fast_with_a_stable_code(
    api: Api,
    client: TestClient,
    method: str,
    route: str,
    payload: dict[str, Any],
    status: int,
    code: str,
) -> None:
    started = time.perf_counter()
    get = method == "GET"
    r = client.get(route, params=payload) if get else client.post(route, json=payload)
    elapsed = time.perf_counter() - started
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code
    assert elapsed < REFUSAL_BUDGET_S, elapsed
    assert api.model.requests == []  # refused before any model call


def test_a_body_over_the_limit_is_413_before_it_is_read(api: Api, client: TestClient) -> None:
    declared = {"content-type": "application/json", "content-length": str(MAX_BODY_BYTES + 1)}
    started = time.perf_counter()
    r = client.post("/v1/query", content=b"{}", headers=declared)  # the header alone decides
    assert time.perf_counter() - started < REFUSAL_BUDGET_S
    assert r.status_code == 413 and r.json()["code"] == "REQUEST_TOO_LARGE"
    body = json.dumps({"question": ON_TOPIC, "pad": "x" * MAX_BODY_BYTES}).encode()
    chunks = (body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20))  # no Content-Length
    r = client.post("/v1/query", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "REQUEST_TOO_LARGE"
    deep = '{"question": "q", "x": ' + "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1) + "}"
    r = client.post("/v1/query", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "JSON_TOO_DEEP"
    assert api.model.requests == []
    assert client.post("/v1/query", json={"question": ON_TOPIC}).status_code == 200


def test_the_bounds_come_from_the_settings(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path / "home",
        embedding={"provider": "hashing", "cache": False},
        generation={"provider": "none", "mode": "extractive"},
        api_limits={"max_body_bytes": 2048, "max_question_chars": 50},
    )
    container = Container(settings)
    assert container.request_limits == Limits(max_body_bytes=2048, max_question_chars=50)
    with TestClient(create_app(container)) as client:
        r = client.post("/v1/query", json={"question": "why " * 13})
        assert r.status_code == 422 and "at most 50" in r.json()["detail"]
        r = client.post("/v1/documents", files=[("files", ("big.txt", b"word " * 500))])
        assert r.status_code == 413 and r.json()["code"] == "REQUEST_TOO_LARGE"
        assert "2048 bytes" in r.json()["detail"]
    defaults = load_settings(home=tmp_path / "other").api_limits
    assert Limits(defaults.max_body_bytes, defaults.max_question_chars) == Limits()


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_the_chat_completion_limit_caps_the_answer_tokens(
    api: Api, client: TestClient, field: str
) -> None:
    """OpenAI's completion limit reaches the model as its max_tokens (it was only used for the
    admission estimate: an answer ran to the server's max_answer_tokens whatever the client
    asked); above the server's own limit, the server's limit holds."""
    r = client.post(CHAT, json=_chat(ON_TOPIC, **{field: 20}))
    assert r.status_code == 200, r.text
    big = client.post(CHAT, json=_chat(ON_TOPIC, **{field: 900_000}))
    assert big.status_code == 200, big.text
    limits = [request.max_tokens for request in api.model.requests]
    assert limits == [20, api.container.answerer.policy.max_answer_tokens]

"""Structured logs (``observability/logs.py``): a real ``ragkeel serve`` process answers real
requests, and every line it writes to stderr is a JSON object; each request's lines (uvicorn's
access line included) carry the trace id its response returned; no secret and no question text
reaches the log. In process: the question appears only with ``observability.log_questions``,
and the text format."""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from corpus import TEST_GATE
from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.observability.logs import configure_logging
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer

from .conftest import COLLECTION, GOOD, ON_TOPIC, api_settings, ragkeel_serve_process, serve_env

API_KEY = "sk-canary-provider-key-4711"
URL_PASSWORD = "canary-url-password-0815"
QUERY_SECRET = "canary-query-secret-1234"
BEARER = "canary-bearer-token-5678"
BANNER = ("ragkeel API on ", "  curl ", "  OpenAI(")  # serve's start-up text, not log lines


@pytest.fixture
def home(tmp_path: Path, corpus: Path) -> Path:
    home = tmp_path / "home"
    with Container(api_settings(home)) as c:
        assert c.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
    return home


def _serve_and_stop(home: Path, provider: FaultServer, requests: Any) -> tuple[list[Any], str]:
    """Start ``ragkeel serve``, run ``requests(base)``, stop it; (their result, stderr)."""
    url = provider.base_url.replace("http://", f"http://user:{URL_PASSWORD}@")
    env = {
        **serve_env(home, url),
        "RAGKEEL_GENERATION__OPENAI__API_KEY": API_KEY,
        "RAGKEEL_SERVER__DRAIN_S": "1",
    }
    with ragkeel_serve_process(env, ready_path="/healthz") as (base, proc):
        results = requests(base)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    return results, err


def test_serve_writes_json_lines_with_the_trace_id_and_no_secrets(home: Path) -> None:
    def requests(base: str) -> list[httpx.Response]:
        with httpx.Client(base_url=base, timeout=30) as http:
            return [
                http.post("/v1/query", json={"question": ON_TOPIC, "collection": COLLECTION}),
                http.post(  # an unrelated bearer string with auth off: a tenant digest
                    "/v1/query",
                    json={"question": ON_TOPIC},
                    headers={"Authorization": f"Bearer {BEARER}"},
                ),
                http.get(f"/v1/search?q=rotate&api_key={QUERY_SECRET}"),
                http.post("/v1/query", json={"question": "   "}),  # refused: traced
            ]

    with FaultServer(seed=1) as provider:
        provider.set(reply=GOOD)
        responses, err = _serve_and_stop(home, provider, requests)
    assert [r.status_code for r in responses] == [200, 200, 200, 422]
    lines = [json.loads(line) for line in err.splitlines() if line.strip()[:1] == "{"]
    banner = [line for line in err.splitlines() if line.strip() and line.strip()[:1] != "{"]
    assert all(line.startswith(BANNER) for line in banner), banner  # only serve's banner
    assert len(lines) >= len(responses) * 2  # at least an answer or access line each
    for line in lines:
        assert {"time", "level", "logger", "message", "trace_id"} <= line.keys(), line
        assert "color_message" not in line  # uvicorn's ANSI copy of the message
    for r in responses:
        tid = r.headers["X-Trace-Id"]
        mine = [line for line in lines if line["trace_id"] == tid]
        access = [line for line in mine if line["logger"] == "uvicorn.access"]
        assert len(access) == 1 and access[0]["status"] == r.status_code, mine
    answers = [line for line in lines if line["message"].startswith("answer ")]
    assert sorted(a["outcome"] for a in answers) == ["answered", "answered", "error"]
    for secret in (API_KEY, URL_PASSWORD, QUERY_SECRET, BEARER, ON_TOPIC):
        assert secret not in err
    search = next(line for line in lines if line.get("path", "").startswith("/v1/search"))
    assert "api_key=**********" in search["path"]


def _ask(tmp_path: Path, corpus: Path, **observability: Any) -> httpx.Response:
    settings = load_settings(
        home=tmp_path / "home",
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
        generation={"gate_threshold": TEST_GATE},
        observability=observability,
    )
    with Container(settings) as container:
        assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
        model = ScriptedChatModel((GOOD,))
        answerer = Answerer(container.retriever, model, AnswerPolicy(gate_threshold=TEST_GATE))
        with TestClient(create_app(container, answerer=answerer)) as c:
            return c.post("/v1/query", json={"question": ON_TOPIC, "collection": COLLECTION})


@pytest.mark.parametrize("log_questions", [False, True])
def test_the_question_is_logged_only_when_asked_for(
    tmp_path: Path, corpus: Path, log_buffer: io.StringIO, log_questions: bool
) -> None:
    configure_logging("json", stream=log_buffer)
    r = _ask(tmp_path, corpus, log_questions=log_questions)
    lines = [json.loads(line) for line in log_buffer.getvalue().splitlines()]
    (answer,) = [line for line in lines if line["message"] == "answer answered"]
    assert answer["trace_id"] == r.headers["X-Trace-Id"] == r.json()["trace_id"]
    assert answer["tenant"] == "default" and answer["route"] == "/v1/query"
    assert (ON_TOPIC in log_buffer.getvalue()) is log_questions
    assert answer.get("question") == (ON_TOPIC if log_questions else None)


def test_text_lines_carry_the_trace_id(
    tmp_path: Path, corpus: Path, log_buffer: io.StringIO
) -> None:
    configure_logging("text", stream=log_buffer)
    r = _ask(tmp_path, corpus)
    line = next(x for x in log_buffer.getvalue().splitlines() if "answer answered" in x)
    assert f"[trace {r.headers['X-Trace-Id']}]" in line and " INFO ragkeel.api " in line

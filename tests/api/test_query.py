"""POST /v1/query: the answer object, and the same answer as server-sent events."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from corpus import TEST_GATE
from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.generation.templates import REFUSAL_PHRASE

from .conftest import (
    COLLECTION,
    GOOD,
    OFF_TOPIC,
    ON_TOPIC,
    Api,
    MakeApp,
    api_settings,
    sse_events,
)


def test_query_returns_the_cited_answer(client: TestClient, api: Api) -> None:
    r = client.post("/v1/query", json={"question": ON_TOPIC, "collection": COLLECTION})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["text"], body["mode"], body["grounded"], body["degraded"]) == (
        GOOD,
        "generative",
        True,
        False,
    )
    (citation,) = body["citations"]
    assert citation["number"] == 1 and citation["title"] == "API keys"
    assert citation["source"] == "keys.md"
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    assert body["usage"]["prompt_tokens"] > 0 and body["cost"] == 0.0
    assert body["model"] == "scripted" and body["template_version"] == "answer_v1"
    assert body["latency_ms"]["total"] > 0 and body["degraded_reason"] is None
    assert body["hits"][0]["rank"] == 1 and body["gate"]["passed"] is True
    assert body["trace_id"] and api.container.traces.get(body["trace_id"]) is not None
    assert api.model.calls == 1


def test_query_off_topic_is_refused_without_a_model_call(client: TestClient, api: Api) -> None:
    body = client.post("/v1/query", json={"question": OFF_TOPIC}).json()
    assert (body["mode"], body["text"], body["citations"]) == ("cannot_answer", REFUSAL_PHRASE, [])
    assert api.model.calls == 0


def test_query_extractive_mode_and_k(client: TestClient, api: Api) -> None:
    body = client.post(
        "/v1/query", json={"question": ON_TOPIC, "mode": "extractive", "k": 1}
    ).json()
    assert body["mode"] == "extractive" and body["citations"] and body["model"] is None
    assert len(body["hits"]) == 1
    assert api.model.calls == 0


def test_stream_framing_and_event_order(client: TestClient) -> None:
    with client.stream("POST", "/v1/query", json={"question": ON_TOPIC, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        raw = r.read().decode("utf-8")
    events = sse_events(raw)
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["sources", "retrieval"] and kinds[-2:] == ["citation", "done"]
    assert set(kinds[2:-2]) == {"token"} and len(kinds) > 5
    data = [json.loads(d) for _, d in events]
    assert data[1]["gate"]["passed"] and data[1]["hits"][0]["rank"] == 1
    assert "".join(d["text"] for k, d in zip(kinds, data, strict=True) if k == "token") == GOOD
    assert data[-2]["number"] == 1
    done = data[-1]
    assert done["text"] == GOOD and done["trace_id"] and done["usage"]["completion_tokens"] > 0


def test_stream_model_failure_degrades_with_a_non_fatal_error(make_app: MakeApp) -> None:
    failure = ScriptedFailure("timeout", after_tokens=2, partial=GOOD)
    with TestClient(make_app([failure]).app) as client:
        r = client.post("/v1/query", json={"question": ON_TOPIC, "stream": True})
    events = [(k, json.loads(d)) for k, d in sse_events(r.text)]
    kinds = [k for k, _ in events]
    error = events[kinds.index("error")][1]
    assert error == {"code": "MODEL_TIMEOUT", "message": error["message"], "fatal": False}
    assert kinds.index("error") == 4  # sources, retrieval, two tokens, then the error
    assert kinds[5] == "token" and kinds[-1] == "done"
    done = events[-1][1]
    assert done["degraded"] and done["degraded_reason"] == "MODEL_TIMEOUT"
    assert done["mode"] == "extractive"


def test_extractive_answers_need_no_model_file(tmp_path: Path, corpus: Path) -> None:
    """A server whose local model is not installed (the default provider, an empty models
    directory) still answers ``mode: extractive``: quoting sentences needs no chat model, not
    even its tokenizer. Generative questions degrade to extractive, marked MODEL_MISSING."""
    container = Container(api_settings(tmp_path / "home"))
    assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
    assert not any(container.settings.models_dir.glob("*.gguf"))
    with TestClient(create_app(container)) as client:
        r = client.post("/v1/query", json={"question": ON_TOPIC, "mode": "extractive"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["mode"] == "extractive" and body["citations"] and body["grounded"]
        assert not body["degraded"] and "ninety days" in body["text"]
        r = client.post(
            "/v1/query", json={"question": ON_TOPIC, "mode": "extractive", "stream": True}
        )
        kinds = [kind for kind, _ in sse_events(r.text)]
        assert r.status_code == 200 and "error" not in kinds and kinds[-1] == "done"
        body = client.post("/v1/query", json={"question": ON_TOPIC}).json()
        assert body["mode"] == "extractive" and body["degraded"]
        assert body["degraded_reason"] == "MODEL_MISSING"


SCHEMA = {"type": "object", "properties": {"rotation_days": {"type": "integer"}}}


def test_output_schema_with_an_extractive_answer_is_refused(make_app: MakeApp) -> None:
    """Quoted sentences are never JSON: JSON asked of an extractive answer is refused with a
    stable code, never answered as prose marked fine (nor is the model called)."""
    api = make_app(['{"rotation_days": 90}'])
    with TestClient(api.app) as client:
        r = client.post(
            "/v1/query", json={"question": ON_TOPIC, "mode": "extractive", "output_schema": SCHEMA}
        )
        assert r.status_code == 422 and r.json()["code"] == "OUTPUT_SCHEMA_UNSUPPORTED"
        assert "extractive" in r.json()["detail"] and "hint" in r.json()
        assert api.model.calls == 0


def test_output_schema_on_a_server_answering_extractively_is_refused(container: Container) -> None:
    model = ScriptedChatModel(['{"rotation_days": 90}'])
    extractive = Answerer(  # a server whose default mode is extractive
        container.retriever, model, AnswerPolicy(gate_threshold=TEST_GATE, mode="extractive")
    )
    with TestClient(create_app(container, answerer=extractive)) as client:
        r = client.post("/v1/query", json={"question": ON_TOPIC, "output_schema": SCHEMA})
        assert r.status_code == 422 and r.json()["code"] == "OUTPUT_SCHEMA_UNSUPPORTED"
        asked = {"question": ON_TOPIC, "output_schema": SCHEMA, "mode": "generative"}
        r = client.post("/v1/query", json=asked)
        assert r.status_code == 200 and r.json()["text"] == '{"rotation_days": 90}'


def test_output_schema_answered_extractively_after_a_model_failure_is_degraded(
    make_app: MakeApp,
) -> None:
    api = make_app([ScriptedFailure("timeout")])
    with TestClient(api.app) as client:
        r = client.post("/v1/query", json={"question": ON_TOPIC, "output_schema": SCHEMA})
    body = r.json()
    assert r.status_code == 200 and body["mode"] == "extractive"
    assert body["degraded"] and body["degraded_reason"] == "MODEL_TIMEOUT"
    assert "not JSON" in body["degraded_detail"]

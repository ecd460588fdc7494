"""The answer cache over HTTP (issue 14): ``/v1/query`` (JSON and SSE) and the OpenAI route
answer a repeated question from the cache, marked ``cached``; the body's ``"cache": false``
and ``Cache-Control`` bypass it; the decision is in the trace and in ``/metrics``; an ingest
in between makes the next ask a miss. The container's own cache (SQLite in the test home,
behind the in-process LRU), the scripted model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.settings import CacheSettings

from .conftest import COLLECTION, GOOD, ON_TOPIC, TEST_GATE, api_settings, sse_events
from .test_metrics import scrape, value

QUERY = {"question": ON_TOPIC, "collection": COLLECTION}


@pytest.fixture
def model() -> ScriptedChatModel:
    return ScriptedChatModel([GOOD])


@pytest.fixture
def client(container: Container, model: ScriptedChatModel) -> Iterator[TestClient]:
    assert container.answer_cache is not None  # on by default
    policy = AnswerPolicy(gate_threshold=TEST_GATE)
    answerer = Answerer(container.retriever, model, policy, cache=container.answer_cache)
    with TestClient(create_app(container, answerer=answerer)) as c:
        yield c


def post(client: TestClient, body: dict[str, object], **headers: str) -> dict[str, object]:
    r = client.post("/v1/query", json=body, headers=headers)
    assert r.status_code == 200, r.text
    out: dict[str, object] = r.json()
    return out


def test_a_repeated_question_is_answered_from_the_cache(
    client: TestClient, model: ScriptedChatModel, container: Container
) -> None:
    first = post(client, QUERY)
    again = post(client, {**QUERY, "question": ON_TOPIC.upper() + "  "})
    assert (first["cached"], again["cached"]) == (False, True)
    assert model.calls == 1
    assert again["text"] == first["text"] and again["citations"] == first["citations"]
    assert again["cache"] == {
        "decision": "hit",
        "kind": "exact",
        "stored": False,
        "skip": None,
        "age_s": again["cache"]["age_s"],  # type: ignore[index]
        "similarity": None,
    }
    assert again["served_by"] == "cache" and again["cost"] == 0.0
    trace = container.traces.get(str(again["trace_id"]))
    assert trace is not None
    attributes = trace.to_dict()["attributes"]
    assert attributes["ragkeel.cache.decision"] == "hit"
    assert attributes["ragkeel.cache.kind"] == "exact"
    first_trace = container.traces.get(str(first["trace_id"]))
    assert first_trace is not None
    assert first_trace.to_dict()["attributes"]["ragkeel.cache.stored"] is True
    samples = scrape(client)
    assert value(samples, "ragkeel_answer_cache_total", decision="hit", kind="exact") == 1
    assert value(samples, "ragkeel_answer_cache_total", decision="miss", kind="none") == 1


def test_the_stream_of_a_hit_has_the_events_of_an_answer(
    client: TestClient, model: ScriptedChatModel
) -> None:
    post(client, QUERY)
    r = client.post("/v1/query", json={**QUERY, "stream": True})
    assert r.status_code == 200
    events = sse_events(r.text)
    kinds = [e for e, _ in events]
    assert kinds[:3] == ["sources", "retrieval", "token"] and kinds[-1] == "done"
    assert set(kinds[3:-1]) == {"citation"}
    assert json.loads(events[0][1])["sources"]  # sources first on a hit too (its stored hits)
    assert json.loads(events[-1][1])["cached"] is True
    assert model.calls == 1


def test_the_openai_route_says_cached_under_ragkeel(
    client: TestClient, model: ScriptedChatModel
) -> None:
    body = {"messages": [{"role": "user", "content": ON_TOPIC}], "collection": COLLECTION}
    first = client.post("/v1/chat/completions", json=body).json()
    again = client.post("/v1/chat/completions", json=body).json()
    assert (first["ragkeel"]["cached"], again["ragkeel"]["cached"]) == (False, True)
    assert again["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]
    bypassed = client.post("/v1/chat/completions", json={**body, "cache": False}).json()
    assert bypassed["ragkeel"]["cached"] is False
    assert model.calls == 2


def test_the_body_and_cache_control_bypass_the_cache(
    client: TestClient, model: ScriptedChatModel
) -> None:
    post(client, QUERY)
    refreshed = post(client, {**QUERY, "cache": False})
    assert refreshed["cached"] is False and refreshed["cache"]["decision"] == "bypass"  # type: ignore[index]
    assert refreshed["cache"]["stored"] is True  # type: ignore[index]
    assert post(client, QUERY, **{"Cache-Control": "no-cache"})["cached"] is False
    no_store = post(client, QUERY, **{"Cache-Control": "no-store"})
    assert no_store["cache"]["skip"] == "no_store"  # type: ignore[index]
    assert model.calls == 4
    assert post(client, QUERY)["cached"] is True


def test_an_ingest_in_between_makes_the_next_ask_a_miss(
    client: TestClient, model: ScriptedChatModel, container: Container, tmp_path: Path
) -> None:
    post(client, QUERY)
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "rotation.md").write_text("Service tokens rotate every thirty days.\n")
    assert container.pipeline.ingest([str(extra)], COLLECTION).exit_code == 0
    assert post(client, QUERY)["cached"] is False
    assert model.calls == 2


def test_the_semantic_cache_serves_a_paraphrase_when_configured(
    tmp_path: Path, corpus: Path
) -> None:
    settings = api_settings(tmp_path / "home").model_copy(
        update={"cache": CacheSettings(semantic=True, semantic_threshold=0.6, backend="memory")}
    )
    with Container(settings) as container:
        assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
        model = ScriptedChatModel([GOOD])
        policy = AnswerPolicy(gate_threshold=TEST_GATE)
        answerer = Answerer(container.retriever, model, policy, cache=container.answer_cache)
        with TestClient(create_app(container, answerer=answerer)) as client:
            post(client, QUERY)
            hit = post(
                client, {**QUERY, "question": "How often should I rotate my API key, please?"}
            )
    assert hit["cached"] is True and hit["cache"]["kind"] == "semantic"  # type: ignore[index]
    assert model.calls == 1

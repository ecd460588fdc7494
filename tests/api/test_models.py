"""``GET /v1/models`` and ``/v1/models/{id}`` (issue 15): ``ragkeel`` and one
``ragkeel/<collection>`` per collection the caller may read — its own tenant's only, and for a
key limited to ACL principals only collections with a document it may see; chat completions
answer from the collection a model names, and refuse any other model with 404
``MODEL_NOT_FOUND``. The official ``openai`` client lists and retrieves them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI

from ragkeel.api.app import create_app
from ragkeel.container import Container
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy

from .conftest import COLLECTION, GOOD, ON_TOPIC, TEST_GATE, serve

HANDBOOK = "Rotate every API key every ninety days. Rotation is done from the admin console."
SALARIES = "Salary bands are reviewed every March by the HR committee."


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def secured(container: Container) -> Iterator[TestClient]:
    """Auth required; team-a has ``handbook`` (public) and ``hr-only`` (ACL: hr), team-b has
    ``ops``; the default tenant has ``kb`` (the shared corpus)."""
    answerer = Answerer(
        container.retriever, ScriptedChatModel((GOOD,)), AnswerPolicy(gate_threshold=TEST_GATE)
    )
    with TestClient(create_app(container, answerer=answerer, host="0.0.0.0")) as client:
        a = container.keys.create("team-a", "ingest")[1]
        b = container.keys.create("team-b", "ingest")[1]
        for token, collection, text, principals in (
            (a, "handbook", HANDBOOK, []),
            (a, "hr-only", SALARIES, ["hr"]),
            (b, "ops", HANDBOOK, []),
        ):
            body = {"text": text, "id": collection, "collection": collection}
            r = client.post(
                "/v1/documents", json={**body, "principals": principals}, headers=bearer(token)
            )
            assert r.status_code == 200, r.text
        yield client


def ids(client: TestClient, token: str) -> list[str]:
    r = client.get("/v1/models", headers=bearer(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list"
    assert all(m["object"] == "model" and isinstance(m["created"], int) for m in body["data"])
    return [m["id"] for m in body["data"]]


def test_the_listing_is_the_callers_tenant_and_acl(
    secured: TestClient, container: Container
) -> None:
    keys = container.keys
    a_query = keys.create("team-a", "query")[1]
    a_hr = keys.create("team-a", "query", principals=["hr"])[1]
    a_admin = keys.create("team-a", "admin")[1]
    b_query = keys.create("team-b", "query")[1]
    assert ids(secured, a_query) == ["ragkeel", "ragkeel/handbook"]  # hr-only: no visible doc
    assert ids(secured, a_hr) == ["ragkeel", "ragkeel/handbook", "ragkeel/hr-only"]
    assert ids(secured, a_admin) == ["ragkeel", "ragkeel/handbook", "ragkeel/hr-only"]
    assert ids(secured, b_query) == ["ragkeel", "ragkeel/ops"]
    owned = {
        m["id"]: m["owned_by"]
        for m in secured.get("/v1/models", headers=bearer(b_query)).json()["data"]
    }
    assert owned == {"ragkeel": "ragkeel", "ragkeel/ops": "team-b"}
    assert secured.get("/v1/models").status_code == 401  # as the chat route: a key is needed


def test_retrieve_and_chat_refuse_what_the_caller_may_not_read(
    secured: TestClient, container: Container
) -> None:
    a_query = container.keys.create("team-a", "query")[1]
    b_query = container.keys.create("team-b", "query")[1]
    ok = secured.get("/v1/models/ragkeel/handbook", headers=bearer(a_query))
    assert ok.status_code == 200 and ok.json()["id"] == "ragkeel/handbook"
    for token, model in (
        (b_query, "ragkeel/handbook"),  # another tenant's collection
        (a_query, "ragkeel/hr-only"),  # no document its principals may see
        (a_query, "ragkeel/kb"),  # the default tenant's
        (a_query, "ragkeel/nothing"),
        (a_query, "gpt-4o"),
    ):
        r = secured.get(f"/v1/models/{model}", headers=bearer(token))
        assert r.status_code == 404, (model, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "MODEL_NOT_FOUND" and "GET /v1/models" in r.json()["hint"]
        chat = {"model": model, "messages": [{"role": "user", "content": "salary bands"}]}
        r = secured.post("/v1/chat/completions", json=chat, headers=bearer(token))
        assert r.status_code == 404 and r.json()["code"] == "MODEL_NOT_FOUND", (model, r.text)
        assert "Salary" not in r.text and "ninety" not in r.text


def test_a_collection_model_answers_from_that_collection(
    secured: TestClient, container: Container
) -> None:
    a_query = container.keys.create("team-a", "query")[1]
    chat: dict[str, Any] = {
        "messages": [{"role": "user", "content": ON_TOPIC}],
        "mode": "extractive",
    }
    r = secured.post(
        "/v1/chat/completions", json={**chat, "model": "ragkeel/handbook"}, headers=bearer(a_query)
    )
    assert r.status_code == 200, r.text
    assert "ninety days" in r.json()["choices"][0]["message"]["content"]
    conflict = {**chat, "model": "ragkeel/handbook", "collection": "other"}
    r = secured.post("/v1/chat/completions", json=conflict, headers=bearer(a_query))
    assert r.status_code == 422 and r.json()["code"] == "QUERY_INVALID"
    same = {**chat, "model": "ragkeel/handbook", "collection": "handbook"}
    assert (
        secured.post("/v1/chat/completions", json=same, headers=bearer(a_query)).status_code == 200
    )


def test_the_openai_client_lists_and_retrieves_models(container: Container) -> None:
    answerer = Answerer(
        container.retriever, ScriptedChatModel((GOOD,)), AnswerPolicy(gate_threshold=TEST_GATE)
    )
    with (
        serve(create_app(container, answerer=answerer)) as base,
        OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=30) as client,
    ):
        listed = [m.id for m in client.models.list()]
        model = client.models.retrieve(f"ragkeel/{COLLECTION}")
        with pytest.raises(openai.NotFoundError) as missing:
            client.models.retrieve("gpt-4o")
        completion = client.chat.completions.create(
            model=f"ragkeel/{COLLECTION}", messages=[{"role": "user", "content": ON_TOPIC}]
        )
    assert listed == ["ragkeel", f"ragkeel/{COLLECTION}"]
    assert model.id == f"ragkeel/{COLLECTION}" and model.object == "model"
    assert model.owned_by == "default" and model.created > 0
    assert missing.value.status_code == 404
    assert (completion.choices[0].message.content or "").startswith(GOOD)

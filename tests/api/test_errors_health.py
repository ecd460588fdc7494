"""problem+json errors, limits, health and readiness, the OpenAPI document."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from ragkeel.api import create_app
from ragkeel.api.request_limits import Limits
from ragkeel.container import Container
from ragkeel.errors import StorageError
from ragkeel.gateway.base import ChatRequest
from ragkeel.gateway.providers.local import LocalChatModel

from .conftest import ON_TOPIC, MakeApp, sse_events

PROBLEM = "application/problem+json"


def test_problem_json_for_bad_input(client: TestClient) -> None:
    r = client.post("/v1/query", json={"collection": "kb"})
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["code"] == "VALIDATION_ERROR" and body["status"] == 422
    assert body["title"] == "Unprocessable Content" and body["instance"] == "/v1/query"
    assert "question: Field required" in body["detail"]
    assert body["type"] == "urn:ragkeel:problem:validation-error"
    r = client.post("/v1/query", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "JSON_INVALID"  # syntax, not content
    r = client.post("/v1/query", json={"question": ON_TOPIC, "k": 0, "surprise": 1})
    assert {e["loc"][-1] for e in r.json()["errors"]} == {"k", "surprise"}
    r = client.post("/v1/query", json={"question": "   "})
    assert r.status_code == 422 and r.json()["code"] == "QUERY_INVALID"


def test_question_too_long(make_app: MakeApp) -> None:
    with TestClient(make_app(limits=Limits(max_question_chars=50)).app) as client:
        r = client.post("/v1/query", json={"question": "why " * 20})
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
        assert r.json()["code"] == "QUESTION_TOO_LONG" and "at most 50" in r.json()["detail"]
        chat = {"messages": [{"role": "user", "content": "why " * 20}]}
        assert client.post("/v1/chat/completions", json=chat).json()["code"] == "QUESTION_TOO_LONG"


def test_unknown_route_and_method(client: TestClient) -> None:
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert r.json()["code"] == "NOT_FOUND"
    r = client.get("/v1/query")
    assert r.status_code == 405 and r.json()["code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in r.headers["allow"]


def _boom(request: ChatRequest) -> str:
    raise RuntimeError("secret internals")


def test_unexpected_error_is_internal_without_details(make_app: MakeApp) -> None:
    with TestClient(make_app(_boom).app, raise_server_exceptions=False) as client:
        r = client.post("/v1/query", json={"question": ON_TOPIC})
        assert r.status_code == 500 and r.headers["content-type"] == PROBLEM
        assert r.json()["code"] == "INTERNAL" and "secret" not in r.text
        assert "Traceback" not in r.text
        r = client.post("/v1/query", json={"question": ON_TOPIC, "stream": True})
        kind, data = sse_events(r.text)[-1]
        assert kind == "error" and json.loads(data) == {
            "code": "INTERNAL",
            "message": "internal error; see the server log",
            "status": 500,
            "fatal": True,
        }


def _store_down(request: ChatRequest) -> str:
    raise StorageError("the disk went away")


def test_fatal_answer_error_maps_to_its_status(make_app: MakeApp) -> None:
    with TestClient(make_app(_store_down).app) as client:
        r = client.post("/v1/query", json={"question": ON_TOPIC})
        assert r.status_code == 503 and r.json()["code"] == "STORE_ERROR"
        assert r.json()["detail"] == "the document store failed; the trace has the details"
        assert "the disk went away" not in r.text  # the store's own words are for operators
        r = client.post("/v1/query", json={"question": ON_TOPIC, "stream": True})
        kinds = [k for k, _ in sse_events(r.text)]
        assert kinds[:2] == ["sources", "retrieval"] and kinds[-1] == "error"
        assert json.loads(sse_events(r.text)[-1][1])["fatal"] is True


def test_healthz_readyz_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["ready"] and not body["degraded"] and body["store"]["documents"] == 3
    assert body["model"] == {"name": "scripted", "loaded": True}
    assert body["deployments"] == []  # no remote deployment: no breaker to report
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/query", "/v1/chat/completions", "/v1/search", "/v1/documents"} <= set(paths)


def test_readyz_reports_a_missing_local_model_without_loading_it(container: Container) -> None:
    model = container.local_model
    assert isinstance(model, LocalChatModel)
    assert container.chat_model is not None and container.chat_model.name == model.name
    with TestClient(create_app(container)) as client:
        body = client.get("/readyz").json()
    assert body["ready"] and body["degraded"] and body["degraded_reason"] == "MODEL_MISSING"
    assert body["model"]["loaded"] is False and not model.loaded

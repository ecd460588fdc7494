"""``POST /v1/feedback`` through the real app (issue 12): a tenant rates its own answers only
(another tenant's trace id is 404 like a missing one, for its admin too), the operator rates
any, bad ratings and long comments have stable codes, and the rating is stored beside the
trace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from corpus import TEST_GATE
from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.observability.feedback import MAX_COMMENT_CHARS

from .conftest import GOOD, ON_TOPIC


def _answerer(container: Container) -> Answerer:
    model = ScriptedChatModel((GOOD,))
    return Answerer(container.retriever, model, AnswerPolicy(gate_threshold=TEST_GATE))


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    app = create_app(container, answerer=_answerer(container), host="0.0.0.0")  # auth required
    with TestClient(app) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ask(client: TestClient, token: str) -> str:
    r = client.post("/v1/query", json={"question": ON_TOPIC}, headers=bearer(token))
    assert r.status_code == 200, r.text
    trace_id = r.json()["trace_id"]
    assert isinstance(trace_id, str)
    return trace_id


def test_a_tenant_rates_its_own_answers_only(client: TestClient, container: Container) -> None:
    a = container.keys.create("team-a", "query")[1]
    b = container.keys.create("team-b", "query")[1]
    admin_b = container.keys.create("team-b", "admin")[1]
    trace_id = ask(client, a)

    r = client.post(
        "/v1/feedback", json={"trace_id": trace_id, "rating": "down"}, headers=bearer(b)
    )
    assert (r.status_code, r.json()["code"]) == (404, "TRACE_NOT_FOUND")
    missing = "0" * 32
    r2 = client.post("/v1/feedback", json={"trace_id": missing, "rating": 1}, headers=bearer(b))
    assert (r2.status_code, r2.json()["code"]) == (404, "TRACE_NOT_FOUND")
    assert r.json()["detail"].replace(trace_id, "ID") == r2.json()["detail"].replace(missing, "ID")
    r = client.post("/v1/feedback", json={"trace_id": trace_id, "rating": "up"})
    assert r.status_code == 401

    body = {"trace_id": trace_id.upper(), "rating": 2, "comment": "  cites the wrong policy "}
    r = client.post("/v1/feedback", json=body, headers=bearer(a))
    assert r.status_code == 201, r.text
    assert r.json() | {"id": 0} == {
        "id": 0,
        "trace_id": trace_id,
        "rating": 2,
        "negative": True,
        "comment": "cites the wrong policy",
    }
    # another tenant's admin may not rate (nor learn the id exists): the trace-read rule
    r = client.post(
        "/v1/feedback", json={"trace_id": trace_id, "rating": "up"}, headers=bearer(admin_b)
    )
    assert (r.status_code, r.json()["code"]) == (404, "TRACE_NOT_FOUND")
    operator = container.keys.create("ops", "admin", trusted_proxy=True)[1]
    r = client.post(
        "/v1/feedback", json={"trace_id": trace_id, "rating": "up"}, headers=bearer(operator)
    )
    assert r.status_code == 201, r.text

    assert container.feedback is not None
    stored = container.feedback.for_trace(trace_id)
    assert [(f.rating, f.tenant) for f in stored] == [("2", "team-a"), ("up", "team-a")]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"rating": "meh"}, "FEEDBACK_INVALID"),
        ({"rating": 6}, "FEEDBACK_INVALID"),
        ({"rating": 0}, "FEEDBACK_INVALID"),
        ({"rating": "up", "comment": "x" * (MAX_COMMENT_CHARS + 1)}, "FEEDBACK_INVALID"),
        ({"rating": 4.5}, "VALIDATION_ERROR"),
        ({"rating": True}, "VALIDATION_ERROR"),
        ({"rating": None}, "VALIDATION_ERROR"),
        ({}, "VALIDATION_ERROR"),
        ({"rating": "up", "extra": 1}, "VALIDATION_ERROR"),
        ({"rating": "up", "trace_id": "abc"}, "VALIDATION_ERROR"),
        ({"rating": "up", "trace_id": "g" * 32}, "VALIDATION_ERROR"),
    ],
)
def test_bad_feedback_has_a_stable_code(
    client: TestClient, container: Container, body: dict[str, object], code: str
) -> None:
    a = container.keys.create("team-a", "query")[1]
    trace_id = ask(client, a)
    r = client.post("/v1/feedback", json={"trace_id": trace_id, **body}, headers=bearer(a))
    assert (r.status_code, r.json()["code"]) == (422, code), r.text
    assert container.feedback is not None
    assert container.feedback.for_trace(trace_id) == []


def test_with_auth_off_any_trace_may_be_rated(container: Container) -> None:
    app = create_app(container, answerer=_answerer(container))
    with TestClient(app) as client:
        r = client.post("/v1/query", json={"question": ON_TOPIC})
        trace_id = r.json()["trace_id"]
        r = client.post("/v1/feedback", json={"trace_id": trace_id, "rating": "up"})
        assert r.status_code == 201, r.text
        assert r.json()["negative"] is False

"""Every response carries ``X-Trace-Id``, assigned when the request starts; an answer's trace
is recorded under that same id (built in the answer's own thread), whatever the outcome."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from corpus import TEST_GATE
from ragkeel.api import create_app
from ragkeel.api.answers import Finished, _traced
from ragkeel.container import Container
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.observability.context import is_trace_id
from ragkeel.observability.names import ROUTE_API_QUERY

from .conftest import COLLECTION, GOOD, ON_TOPIC, Api, sse_events

HEADER = "X-Trace-Id"


def test_an_answer_is_traced_under_the_response_header_id(client: TestClient, api: Api) -> None:
    r = client.post("/v1/query", json={"question": ON_TOPIC, "collection": COLLECTION})
    assert r.status_code == 200, r.text
    tid = r.headers[HEADER]
    assert is_trace_id(tid) and r.json()["trace_id"] == tid
    trace = api.container.traces.get(tid)
    assert trace is not None and trace.outcome == "answered" and trace.id == tid


def test_a_streamed_answer_and_a_chat_completion_too(client: TestClient, api: Api) -> None:
    body = {"question": ON_TOPIC, "collection": COLLECTION, "stream": True}
    r = client.post("/v1/query", json=body)
    assert r.status_code == 200
    done = [json.loads(d) for e, d in sse_events(r.text) if e == "done"]
    assert done and done[0]["trace_id"] == r.headers[HEADER]
    chat = {
        "model": "ragkeel",
        "collection": COLLECTION,
        "messages": [{"role": "user", "content": ON_TOPIC}],
    }
    r = client.post("/v1/chat/completions", json=chat)
    assert r.status_code == 200
    assert r.json()["ragkeel"]["trace_id"] == r.headers[HEADER]


def test_a_refused_question_is_traced_under_the_header_id(client: TestClient, api: Api) -> None:
    r = client.post("/v1/query", json={"question": "   "})
    assert r.status_code == 422
    trace = api.container.traces.get(r.headers[HEADER])
    assert trace is not None and trace.outcome == "error"


def test_every_response_has_its_own_id(client: TestClient) -> None:
    ids = [client.get(path).headers[HEADER] for path in ("/healthz", "/readyz", "/nowhere")]
    ids.append(
        client.get("/v1/search", params={"q": "rotate", "collection": COLLECTION}).headers[HEADER]
    )
    assert len(set(ids)) == 4 and all(is_trace_id(i) for i in ids)


def test_a_refusal_before_routing_has_an_id_too(container: Container) -> None:
    answerer = Answerer(
        container.retriever, ScriptedChatModel((GOOD,)), AnswerPolicy(gate_threshold=TEST_GATE)
    )
    app = create_app(container, answerer=answerer, host="0.0.0.0")  # auth auto -> required
    with TestClient(app) as c:
        r = c.post("/v1/query", json={"question": ON_TOPIC})
    assert r.status_code == 401 and is_trace_id(r.headers[HEADER])


def test_closing_after_the_answer_records_no_second_trace(api: Api) -> None:
    """The answer's thread may close the stream right after handing over the answer (the
    consumer left once it had it): that close is not a cancelled request."""
    c = api.container
    before = len(c.traces.recent(limit=100))
    events = Answerer(
        c.retriever, ScriptedChatModel((GOOD,)), AnswerPolicy(gate_threshold=TEST_GATE)
    ).stream(ON_TOPIC, collection=COLLECTION)
    stream = _traced(c, events, ON_TOPIC, ROUTE_API_QUERY)
    finished = next(item for item in stream if isinstance(item, Finished))
    stream.close()  # GeneratorExit at the yield of the Finished item
    traces = c.traces.recent(limit=100)
    assert len(traces) == before + 1 and traces[0].id == finished.trace_id
    assert traces[0].outcome == "answered"

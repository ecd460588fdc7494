"""Sources first (issue 14): a streamed answer sends the retrieved sources and the gate decision
as soon as retrieval ends, before the model is called — ``/v1/query``'s leading ``sources``
event and the OpenAI stream's second chunk (``ragkeel`` field), read by the official ``openai``
client. The model is the scripted fake, held inside its call until the test has the sources:
had the stream waited for the model, the first read would time out. Also: a gate refusal, the
extractive mode and model failures send the sources first too, and a tenant's sources name only
its own documents, by their public ids."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from openai import OpenAI

from ragkeel.container import Container
from ragkeel.errors import StorageError
from ragkeel.gateway.base import ChatRequest
from ragkeel.gateway.providers.scripted import ScriptedFailure
from ragkeel.generation.templates import REFUSAL_PHRASE

from .conftest import GOOD, OFF_TOPIC, ON_TOPIC, Api, MakeApp, auth_required_client, serve

HOLD_S = 20.0  # the longest the held model waits for the test (a bound, never reached)
READ_S = 10.0  # the longest the test waits for the sources while the model is held


class HeldModel:
    """A script for ``ScriptedChatModel`` that holds every call until ``release()``."""

    def __init__(self, reply: str = GOOD) -> None:
        self.reply = reply
        self.entered = threading.Event()
        self._released = threading.Event()

    def __call__(self, request: ChatRequest) -> str:
        self.entered.set()
        self._released.wait(HOLD_S)
        return self.reply

    def release(self) -> None:
        self._released.set()

    @property
    def released(self) -> bool:
        return self._released.is_set()


@contextmanager
def held_app(make_app: MakeApp) -> Iterator[tuple[Api, HeldModel, str]]:
    held = HeldModel()
    api = make_app(held)
    try:
        with serve(api.app) as base:
            yield api, held, base
    finally:
        held.release()


def _events(lines: Iterator[str]) -> Iterator[tuple[str | None, Any]]:
    """``(event, data)`` per server-sent event read from ``lines``, as they arrive."""
    event: str | None = None
    data: list[str] = []
    for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif not line and data:
            text = "\n".join(data)
            yield event, (text if text == "[DONE]" else json.loads(text))
            event, data = None, []


def test_query_sends_the_sources_while_the_model_is_still_held(make_app: MakeApp) -> None:
    with (
        held_app(make_app) as (api, held, base),
        httpx.Client(base_url=base, timeout=READ_S) as client,
        client.stream("POST", "/v1/query", json={"question": ON_TOPIC, "stream": True}) as r,
    ):
        assert r.status_code == 200
        events = _events(r.iter_lines())
        kind, sources = next(events)
        assert not held.released  # the model has not answered: the sources did not wait for it
        assert kind == "sources"
        kind, retrieval = next(events)
        assert kind == "retrieval"
        held.release()
        rest = list(events)
    assert set(sources) == {"sources", "gate", "confidence"}
    assert sources["gate"]["passed"] is True and sources["gate"]["reason"]
    first = sources["sources"][0]
    assert set(first) == {
        "rank",
        "chunk_id",
        "document_id",
        "collection",
        "title",
        "source",
        "page",
        "score",
    }
    assert (first["rank"], first["title"], first["source"]) == (1, "API keys", "keys.md")
    assert first["document_id"].startswith("doc_")  # the public id, never a path
    scores = [s["score"] for s in sources["sources"]]
    assert scores == sorted(scores, reverse=True)
    # the same hits as the full retrieval event, in the same order
    assert [(s["chunk_id"], s["document_id"]) for s in sources["sources"]] == [
        (h["chunk_id"], h["document_id"]) for h in retrieval["hits"]
    ]
    kinds = [k for k, _ in rest]
    assert kinds[0] == "token" and kinds[-1] == "done"
    done = rest[-1][1]
    assert done["text"] == GOOD
    assert {c["document_id"] for c in done["citations"]} <= {
        s["document_id"] for s in sources["sources"]
    }
    assert api.model.calls == 1


def test_openai_stream_carries_the_sources_in_its_second_chunk(make_app: MakeApp) -> None:
    """The official client reads the extra field and is not disturbed by the empty delta."""
    with (
        held_app(make_app) as (api, held, base),
        OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=READ_S) as client,
    ):
        messages: Any = [{"role": "user", "content": ON_TOPIC}]
        with client.chat.completions.create(
            model="ragkeel", messages=messages, stream=True
        ) as stream:
            chunks = iter(stream)
            opening, sourced = next(chunks), next(chunks)
            assert not held.released
            held.release()
            rest = list(chunks)
    assert opening.choices[0].delta.role == "assistant"
    assert sourced.choices[0].delta.content == "" and sourced.choices[0].finish_reason is None
    assert sourced.id == opening.id and sourced.object == "chat.completion.chunk"
    extras = (sourced.model_extra or {})["ragkeel"]
    assert extras["gate"]["passed"] is True and extras["sources"][0]["source"] == "keys.md"
    text = "".join(c.choices[0].delta.content or "" for c in [opening, sourced, *rest])
    assert text.startswith(GOOD) and "Sources:\n[1] API keys" in text
    assert (rest[-1].model_extra or {})["ragkeel"]["citations"][0]["number"] == 1
    assert api.model.calls == 1


def test_openai_stream_helper_accumulates_around_the_sources_chunk(api: Api) -> None:
    """``client.chat.completions.stream`` (the accumulating helper) builds the same message."""
    with (
        serve(api.app) as base,
        OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=READ_S) as client,
    ):
        messages: Any = [{"role": "user", "content": ON_TOPIC}]
        with client.beta.chat.completions.stream(model="ragkeel", messages=messages) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_completion()
    content = final.choices[0].message.content
    assert content is not None and content.startswith(GOOD)
    assert kinds[-1] == "content.done"


@pytest.mark.parametrize("mode", ["refused", "extractive"])
def test_refusals_and_extractive_answers_send_the_sources_first(
    client: TestClient, api: Api, mode: str
) -> None:
    body: dict[str, Any] = {"question": ON_TOPIC, "stream": True}
    if mode == "refused":
        body["question"] = OFF_TOPIC
    else:
        body["mode"] = "extractive"
    r = client.post("/v1/query", json=body)
    events = _events(iter(r.text.split("\n")))
    (kind, sources), *rest = list(events)
    assert kind == "sources" and rest[0][0] == "retrieval"
    assert [k for k, _ in rest[1:]].count("token") >= 1 and rest[-1][0] == "done"
    done = rest[-1][1]
    if mode == "refused":
        assert sources["gate"]["passed"] is False
        assert sources["gate"]["reason"] in ("low_confidence", "no_hits")
        assert done["mode"] == "cannot_answer" and done["text"] == REFUSAL_PHRASE
    else:
        assert sources["gate"]["passed"] is True and sources["sources"]
        assert done["mode"] == "extractive"
    assert api.model.calls == 0

    chat = client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": body["question"]}], "stream": True}
        | ({"mode": "extractive"} if mode == "extractive" else {}),
    )
    chunks = [d for _, d in _events(iter(chat.text.split("\n"))) if d != "[DONE]"]
    assert "ragkeel" not in chunks[0] and chunks[1]["choices"][0]["delta"] == {"content": ""}
    assert chunks[1]["ragkeel"]["gate"] == sources["gate"]
    assert api.model.calls == 0


def _store_down(request: ChatRequest) -> str:
    raise StorageError("the disk went away")


@pytest.mark.parametrize(
    ("script", "ending"),
    [
        ((ScriptedFailure("unavailable"),), "done"),  # degraded: the extractive answer follows
        (_store_down, "error"),  # fatal
    ],
)
def test_a_failing_model_comes_after_the_sources(
    make_app: MakeApp, script: Any, ending: str
) -> None:
    with TestClient(make_app(script).app) as client:
        r = client.post("/v1/query", json={"question": ON_TOPIC, "stream": True})
        kinds = [k for k, _ in _events(iter(r.text.split("\n")))]
        chat = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": ON_TOPIC}], "stream": True},
        )
    assert kinds[:3] == ["sources", "retrieval", "error"] and kinds[-1] == ending
    chunks = [d for _, d in _events(iter(chat.text.split("\n"))) if d != "[DONE]"]
    assert chunks[1]["ragkeel"]["sources"]


def test_a_tenants_sources_name_only_its_own_documents(container: Container) -> None:
    canary_a, canary_b = "CANARYSRCALPHA4", "CANARYSRCBRAVO8"
    with auth_required_client(container) as client:
        ids = {}
        tokens = {}
        for tenant, canary in (("team-a", canary_a), ("team-b", canary_b)):
            ingest = container.keys.create(tenant, "ingest")[1]
            tokens[tenant] = container.keys.create(tenant, "query")[1]
            text = f"# Rotation {canary}\n\nRotate every API key every ninety days ({canary}).\n"
            r = client.post(
                "/v1/documents",
                headers={"Authorization": f"Bearer {ingest}"},
                data={"collection": "kb"},
                files=[("files", (f"{canary}.md", text.encode(), "text/markdown"))],
            )
            assert r.status_code == 200, r.text
            ids[tenant] = {i for f in r.json()["files"] for i in f["document_ids"]}
        headers = {"Authorization": f"Bearer {tokens['team-b']}"}
        body = {"question": "How often do I rotate an API key?", "stream": True}
        r = client.post("/v1/query", headers=headers, json=body)
        chat = client.post(
            "/v1/chat/completions",
            headers=headers,
            json={"messages": [{"role": "user", "content": body["question"]}], "stream": True},
        )
    (kind, sources), *_ = list(_events(iter(r.text.split("\n"))))
    assert kind == "sources" and sources["sources"]
    assert {s["document_id"] for s in sources["sources"]} == ids["team-b"]
    assert {s["source"] for s in sources["sources"]} == {f"{canary_b}.md"}
    assert canary_a not in r.text and canary_a not in chat.text
    chunks = [d for _, d in _events(iter(chat.text.split("\n"))) if d != "[DONE]"]
    assert {s["document_id"] for s in chunks[1]["ragkeel"]["sources"]} == ids["team-b"]

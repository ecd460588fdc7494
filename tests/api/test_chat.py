"""POST /v1/chat/completions with the official openai client against a running server."""

from __future__ import annotations

from fastapi.testclient import TestClient
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from .conftest import GOOD, ON_TOPIC, Api, serve


def test_openai_client_create_and_stream(api: Api) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": ON_TOPIC},
    ]
    with (
        serve(api.app) as base,
        OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=30) as client,
    ):
        completion = client.chat.completions.create(model="ragkeel", messages=messages)
        chunks = []
        with client.chat.completions.create(
            model="ragkeel",
            messages=messages,
            stream=True,
        ) as stream:
            chunks = list(stream)

    assert completion.object == "chat.completion" and completion.model == "scripted"
    content = completion.choices[0].message.content
    assert content is not None and content.startswith(GOOD)
    assert "\n\nSources:\n[1] API keys" in content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    extras = (completion.model_extra or {})["ragkeel"]
    assert extras["mode"] == "generative" and extras["grounded"] and not extras["degraded"]
    assert extras["trace_id"] and extras["citations"][0]["number"] == 1
    assert extras["served_by"] == "scripted" and "gateway" in extras  # as /v1/query says

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == content
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.usage is not None
    assert (last.model_extra or {})["ragkeel"]["trace_id"]
    assert (last.model_extra or {})["ragkeel"]["served_by"] == "scripted"
    assert len({c.id for c in chunks}) == 1
    assert api.model.calls == 2
    (question,) = {r.messages[-1].content.rsplit("Question: ", 1)[1] for r in api.model.requests}
    assert question == ON_TOPIC  # the last user message is the question


def test_stream_ends_with_done(client: TestClient) -> None:
    body = {"messages": [{"role": "user", "content": ON_TOPIC}], "stream": True}
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200 and r.text.endswith("data: [DONE]\n\n")
    assert all(block.startswith("data: ") for block in r.text.strip().split("\n\n"))


def test_content_parts_and_extensions(client: TestClient) -> None:
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": ON_TOPIC}]}],
        "mode": "extractive",
        "collection": "kb",
        "temperature": 0.3,
    }
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["ragkeel"]["mode"] == "extractive"


def test_no_user_message_is_a_problem(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "system", "content": "x"}]})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "QUERY_INVALID"

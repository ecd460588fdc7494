"""A multi-turn conversation through the running service with the official ``openai`` client
(issue 15): the follow-up is made standalone before retrieval, answered from the right source,
and its trace (``GET /v1/traces/{id}``) keeps both the last message and the standalone question
and says which condenser made it — the model on the cheap route (a scripted model here), the
rules (``generation.provider: none``), or the rules standing in when the model provider answers
500 (a fault server on 127.0.0.1). ``/v1/query`` takes the same conversation as ``history``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from ragkeel.api.app import create_app
from ragkeel.container import Container
from ragkeel.gateway.base import ChatRequest
from ragkeel.gateway.providers.scripted import Reply, ScriptedChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.condense import ModelCondenser
from ragkeel.generation.condense_rules import RuleCondenser
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer

from .conftest import COLLECTION, GOOD, ON_TOPIC, TEST_GATE, api_settings, serve

FOLLOW_UP = "Where is that done?"
STANDALONE = "Where is the rotation of an API key done?"


def _resolving(request: ChatRequest) -> Reply:
    return STANDALONE if f"Last question: {FOLLOW_UP}" in request.messages[-1].content else "?"


def _trace(base: str, trace_id: str) -> dict[str, Any]:
    r = httpx.get(f"{base}/v1/traces/{trace_id}", timeout=10)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@contextmanager
def _chat(container: Container, answerer: Answerer | None = None) -> Iterator[tuple[str, OpenAI]]:
    """The app of ``container`` served on 127.0.0.1, and the official client pointed at it."""
    with (
        serve(create_app(container, answerer=answerer)) as base,
        OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=30) as client,
    ):
        yield base, client


def _turns(client: OpenAI, **extra: Any) -> tuple[Any, Any]:
    """Ask ON_TOPIC, then the follow-up after it (the first answer as the assistant turn)."""
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": ON_TOPIC}]
    first = client.chat.completions.create(model="ragkeel", messages=messages, **extra)
    messages += [
        {"role": "assistant", "content": first.choices[0].message.content or ""},
        {"role": "user", "content": FOLLOW_UP},
    ]
    second = client.chat.completions.create(model="ragkeel", messages=messages, **extra)
    return first, second


def test_a_follow_up_through_the_openai_client(container: Container) -> None:
    cheap = ScriptedChatModel(_resolving, name="cheap")
    model = ScriptedChatModel((GOOD,))
    answerer = Answerer(
        container.retriever,
        model,
        AnswerPolicy(gate_threshold=TEST_GATE, template_version="answer_v1"),
        condenser=ModelCondenser(cheap, RuleCondenser()),
    )
    with _chat(container, answerer) as (base, client):
        first, second = _turns(client)
        assert cheap.calls == 1  # the first question had no conversation: not condensed
        streamed = client.chat.completions.create(
            model=f"ragkeel/{COLLECTION}",
            messages=[
                {"role": "user", "content": ON_TOPIC},
                {"role": "user", "content": FOLLOW_UP},
            ],
            stream=True,
        )
        chunks = list(streamed)
        trace = _trace(base, (second.model_extra or {})["ragkeel"]["trace_id"])
        first_trace = _trace(base, (first.model_extra or {})["ragkeel"]["trace_id"])
    assert (second.choices[0].message.content or "").startswith(GOOD)
    assert "Sources:\n[1] API keys" in (second.choices[0].message.content or "")
    # the answer model was asked the standalone question
    assert STANDALONE in model.requests[-2].messages[-1].content
    assert trace["question"] == STANDALONE
    condense = trace["gateway"]["condense"]
    assert condense["original"] == FOLLOW_UP and condense["question"] == STANDALONE
    assert condense["condenser"] == "model" and condense["model"] == "cheap"
    assert condense["turns"] == 2 and "fallback" not in condense
    assert trace["attributes"]["ragkeel.condense.condenser"] == "model"
    assert trace["latency_ms"]["condense"] >= 0
    assert trace["retrieved"][0]["source"] == "keys.md"
    assert "condense" not in first_trace["gateway"] and first_trace["question"] == ON_TOPIC
    # streamed, with the collection named by the model, condensed the same way
    assert cheap.calls == 2
    assert (chunks[-1].model_extra or {})["ragkeel"]["citations"]


def test_extractive_answers_condense_with_the_rules(tmp_path: Path, corpus: Path) -> None:
    settings = api_settings(tmp_path / "home", provider="none")
    container = Container(settings)
    assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
    with _chat(container) as (base, client):
        _, second = _turns(client)
        trace = _trace(base, (second.model_extra or {})["ragkeel"]["trace_id"])
        query = httpx.post(
            f"{base}/v1/query",
            json={
                "question": FOLLOW_UP,
                "history": [{"role": "user", "content": ON_TOPIC}],
            },
            timeout=30,
        ).json()
        alone = httpx.post(f"{base}/v1/query", json={"question": FOLLOW_UP}, timeout=30).json()
    assert (second.model_extra or {})["ragkeel"]["mode"] == "extractive"
    assert "ninety days" in (second.choices[0].message.content or "")
    condense = trace["gateway"]["condense"]
    assert condense["condenser"] == "rules" and condense["original"] == FOLLOW_UP
    assert trace["question"] != FOLLOW_UP and "API key" in trace["question"]
    assert query["question"] == trace["question"] and query["mode"] == "extractive"
    assert alone["mode"] == "cannot_answer"  # the follow-up alone finds nothing to answer


def test_a_failing_model_provider_falls_back_to_the_rules(tmp_path: Path, corpus: Path) -> None:
    """The condenser and the answer both go to a provider that answers 500: the question is
    still condensed (by the rules), the answer is the extractive one, and the trace says why."""
    with FaultServer(seed=3) as provider:
        provider.set(error_rate=1.0, error="500")
        base_settings = api_settings(tmp_path / "home")
        settings = load_settings(
            home=base_settings.home,
            embedding=base_settings.embedding.model_dump(),
            ingestion=base_settings.ingestion.model_dump(),
            generation={"gate_threshold": TEST_GATE, "provider": "openai"},
            gateway={
                "deployments": [
                    {"name": "d0", "model": "gpt-4o-mini", "base_url": provider.base_url}
                ],
                "retry": {"max_retries": 0},
                "breaker": {"consecutive_failures": 100},
            },
        )
        container = Container(settings)
        assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
        with _chat(container) as (base, client):
            _, second = _turns(client)
            trace = _trace(base, (second.model_extra or {})["ragkeel"]["trace_id"])
        assert provider.stats.requests >= 3  # answer 1, condense, answer 2: all refused
    extras = (second.model_extra or {})["ragkeel"]
    assert extras["degraded"] and extras["mode"] == "extractive"
    condense = trace["gateway"]["condense"]
    assert condense["condenser"] == "rules" and condense["fallback"] == "MODEL_UNAVAILABLE"
    assert condense["original"] == FOLLOW_UP and "API" in condense["question"]
    assert trace["attributes"]["ragkeel.condense.fallback"] == "MODEL_UNAVAILABLE"
    assert "ninety days" in (second.choices[0].message.content or "")

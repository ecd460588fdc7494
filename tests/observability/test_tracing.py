"""``trace_from_answer`` / ``trace_from_error`` on real answers from ``Answerer`` (a real
index, the scripted model), and through the store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ragkeel.errors import QueryError
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.generation.tracing import (
    INTERNAL_ERROR,
    render_prompt,
    trace_from_answer,
    trace_from_error,
)
from ragkeel.observability import names
from ragkeel.observability.trace_store import SqliteTraceStore
from ragkeel.retrieval.hybrid import HybridRetriever

from .conftest import OFF_TOPIC, ON_TOPIC, TEST_GATE

GOOD = "Rotate every API key every ninety days [1]."
ROUTE = names.ROUTE_CLI_ASK


def answerer(retriever: HybridRetriever, *script: str | ScriptedFailure) -> Answerer:
    model = ScriptedChatModel(script) if script else None
    policy = AnswerPolicy(gate_threshold=TEST_GATE, template_version="answer_v1")
    return Answerer(retriever, model, policy)


def test_generative_answer_becomes_a_full_trace(retriever: HybridRetriever, tmp_path: Path) -> None:
    answer = answerer(retriever, GOOD).answer(ON_TOPIC)
    trace = trace_from_answer(answer, route=ROUTE, keep_prompt_text=True)
    assert (trace.outcome, trace.mode, trace.route, trace.question) == (
        "answered",
        "generative",
        ROUTE,
        ON_TOPIC,
    )
    assert (trace.model, trace.template_version, trace.grounded) == ("scripted", "answer_v1", True)
    assert trace.input_tokens == answer.usage.prompt_tokens > 0
    assert trace.output_tokens == answer.usage.completion_tokens > 0
    assert [c.chunk_id for c in trace.retrieved] == [h.chunk.id for h in answer.hits]
    top, hit = trace.retrieved[0], answer.hits[0]
    assert (top.keyword_rank, top.dense_rank, top.dense_score) == (
        hit.keyword_rank,
        hit.dense_rank,
        hit.dense_score,
    )
    assert trace.gate is not None and trace.gate.passed and trace.gate.dense_threshold == TEST_GATE
    text = render_prompt(answer.prompt)
    assert trace.prompt is not None and trace.prompt.text == text and "[user]\n" in text
    assert trace.prompt.tokens == answer.usage.prompt_tokens and trace.prompt.chars == len(text)
    assert trace.output == GOOD
    assert [(c.number, c.chunk_id) for c in trace.citations] == [
        (c.number, c.chunk_id) for c in answer.citations
    ]
    stages = {"embed", "keyword", "dense", "fuse", "gate", "pack", "first_token", "generate"}
    stages |= {"total"}
    assert stages <= set(trace.latency_ms) <= set(names.STAGES)
    store = SqliteTraceStore(tmp_path / "traces.db")
    assert store.get(store.record(trace)) == trace
    store.close()


def test_prompt_kept_only_as_hash_when_asked(retriever: HybridRetriever) -> None:
    answer = answerer(retriever, GOOD).answer(ON_TOPIC)
    trace = trace_from_answer(answer, route=ROUTE, keep_prompt_text=False)
    text = render_prompt(answer.prompt)
    assert trace.prompt is not None and trace.prompt.text is None
    assert trace.prompt.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert trace.attributes()[names.PROMPT_CHARS] == len(text)


def test_gate_refusal_is_cannot_answer_without_prompt(retriever: HybridRetriever) -> None:
    answer = answerer(retriever, GOOD).answer(OFF_TOPIC)
    trace = trace_from_answer(answer, route=ROUTE, keep_prompt_text=True)
    assert (trace.outcome, trace.mode, trace.model, trace.prompt) == (
        "cannot_answer",
        "cannot_answer",
        None,
        None,
    )
    assert trace.gate is not None and not trace.gate.passed
    assert trace.gate.reason == "low_confidence"


def test_model_failure_is_degraded_with_reason(retriever: HybridRetriever) -> None:
    answer = answerer(retriever, ScriptedFailure("unavailable", message="down")).answer(ON_TOPIC)
    trace = trace_from_answer(answer, route=ROUTE, keep_prompt_text=True)
    assert (trace.outcome, trace.mode, trace.degraded_reason) == (
        "degraded",
        "extractive",
        "MODEL_UNAVAILABLE",
    )
    assert trace.degraded_detail and trace.prompt is not None  # the failed call's prompt
    assert trace.to_dict()["degraded"]["reason"] == "MODEL_UNAVAILABLE"


def test_extractive_mode_is_answered_without_a_model(retriever: HybridRetriever) -> None:
    answer = answerer(retriever, GOOD).answer(ON_TOPIC, mode="extractive")
    trace = trace_from_answer(answer, route=names.ROUTE_API_QUERY, keep_prompt_text=True)
    assert (trace.outcome, trace.mode, trace.model, trace.prompt) == (
        "answered",
        "extractive",
        None,
        None,
    )
    assert trace.citations and trace.output == answer.text


@pytest.mark.parametrize(
    ("error", "code"),
    [(QueryError("the question is empty"), "QUERY_INVALID"), (ValueError(), INTERNAL_ERROR)],
)
def test_trace_from_error(error: Exception, code: str) -> None:
    trace = trace_from_error("", error, route=names.ROUTE_API_CHAT, latency_ms=12.34567)
    assert (trace.outcome, trace.error_code, trace.route) == ("error", code, "api.chat")
    assert trace.error_message and trace.latency_ms == {"total": 12.346}
    assert trace.to_dict()["error"]["code"] == code


def test_a_stored_prompt_never_keeps_the_system_prompts_canary(retriever: HybridRetriever) -> None:
    """The trace kept the system message as sent, canary included: anyone reading traces (the
    API, the dashboard) could learn the marker that flags a system-prompt leak."""
    policy = AnswerPolicy(gate_threshold=TEST_GATE, template_version="answer_v3")
    answer = Answerer(retriever, ScriptedChatModel((GOOD,)), policy).answer(ON_TOPIC)
    sent = render_prompt(answer.prompt)
    assert "RGK-CANARY-" in sent
    trace = trace_from_answer(answer, route=ROUTE, keep_prompt_text=True)
    assert trace.prompt is not None and trace.prompt.text is not None
    canary = sent.split("RGK-CANARY-", 1)[1][:16]
    assert canary not in trace.prompt.text and "RGK-CANARY-****" in trace.prompt.text
    assert canary not in str(trace.attributes())

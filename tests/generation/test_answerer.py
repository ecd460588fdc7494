"""The question flow end to end on a real SQLite index with the scripted model."""

from __future__ import annotations

import pytest

from ragkeel.errors import ModelError, QueryError
from ragkeel.gateway.base import ChatRequest
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.generation.answer import (
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    RetrievalEvent,
    TokenEvent,
)
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.generation.templates import REFUSAL_PHRASE
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.filters import Filter

from .conftest import OFF_TOPIC, ON_TOPIC, TEST_GATE

GOOD = "Rotate every API key every ninety days [1]."


def answerer(retriever: HybridRetriever, model: ScriptedChatModel | None, **kw: object) -> Answerer:
    policy = AnswerPolicy(gate_threshold=TEST_GATE, **kw)  # type: ignore[arg-type]
    return Answerer(retriever, model, policy)


def test_generative_answer_with_citations_usage_and_latency(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel([GOOD])
    answer = answerer(retriever, model, template_version="answer_v1").answer(ON_TOPIC)
    assert (answer.mode, answer.text, answer.grounded, answer.degraded) == (
        "generative",
        GOOD,
        True,
        False,
    )
    (citation,) = answer.citations
    assert citation.number == 1 and citation.title == "API keys"
    assert citation.source.endswith("keys.md") and citation.document_id and citation.chunk_id
    assert citation.snippet == "Rotate every API key every ninety days."
    assert answer.model == "scripted" and answer.template_version == "answer_v1"
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert answer.cost == 0.0 and answer.hits and answer.gate and answer.gate.passed
    stages = {"retrieve", "embed", "keyword", "dense", "gate", "pack", "first_token", "generate"}
    stages |= {"total"}
    assert stages <= set(answer.latency_ms)
    (request,) = model.requests
    assert request.temperature == 0.0 and request.max_tokens == 256
    assert request.messages == answer.prompt
    assert "[1] API keys\nRotate every API key" in request.messages[-1].content
    assert request.messages[-1].content.endswith(f"Question: {ON_TOPIC}")


def test_stream_event_order(retriever: HybridRetriever) -> None:
    events = list(answerer(retriever, ScriptedChatModel([GOOD])).stream(ON_TOPIC))
    kinds = [e.kind for e in events]
    assert kinds[0] == "retrieval" and kinds[-2:] == ["citation", "done"]
    assert set(kinds[1:-2]) == {"token"} and len(kinds) > 4
    assert isinstance(events[0], RetrievalEvent) and events[0].gate.passed
    tokens = "".join(e.text for e in events if isinstance(e, TokenEvent))
    done = events[-1]
    assert isinstance(done, DoneEvent) and done.answer.text == tokens == GOOD
    assert isinstance(events[-2], CitationEvent) and events[-2].citation.number == 1


def test_gate_refuses_off_topic_without_calling_the_model(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel([GOOD])
    flow = answerer(retriever, model)
    events = list(flow.stream(OFF_TOPIC))
    assert [e.kind for e in events] == ["retrieval", "token", "done"]
    answer = flow.answer(OFF_TOPIC)
    assert model.calls == 0
    assert (answer.mode, answer.text, answer.citations, answer.grounded) == (
        "cannot_answer",
        REFUSAL_PHRASE,
        (),
        True,
    )
    assert answer.gate and not answer.gate.passed and answer.gate.reason == "low_confidence"
    assert answer.model is None and answer.hits  # the hits are still reported


def test_gate_threshold_is_configurable(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel([GOOD])
    strict = Answerer(retriever, model, AnswerPolicy(gate_threshold=0.99)).answer(ON_TOPIC)
    assert strict.mode == "cannot_answer" and model.calls == 0
    by_keyword = Answerer(
        retriever, model, AnswerPolicy(gate_threshold=0.99, gate_keyword_threshold=1.0)
    )
    assert by_keyword.answer(ON_TOPIC).mode == "generative" and model.calls == 1
    assert by_keyword.answer(OFF_TOPIC).mode == "cannot_answer"  # no keyword hit at all


def test_model_refusal_phrase_becomes_cannot_answer(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel(["I cannot answer this from the provided sources [1]."])
    answer = answerer(retriever, model).answer(ON_TOPIC)
    assert (answer.mode, answer.text, answer.citations) == ("cannot_answer", REFUSAL_PHRASE, ())
    assert model.calls == 1 and answer.model == "scripted" and not answer.degraded


def test_wrong_citation_is_reported_and_not_grounded(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel(["Rotate every API key every ninety days [1][7]."])
    answer = answerer(retriever, model).answer(ON_TOPIC)
    assert answer.mode == "generative" and not answer.grounded
    assert answer.invalid_citations == (7,) and [c.number for c in answer.citations] == [1]


def test_unsupported_sentence_is_flagged(retriever: HybridRetriever) -> None:
    invented = "Keys are also protected by quantum lattice encryption [1]."
    answer = answerer(retriever, ScriptedChatModel([f"{GOOD} {invented}"])).answer(ON_TOPIC)
    assert answer.unsupported_sentences == (invented,) and not answer.grounded


def test_timeout_mid_stream_falls_back_to_extractive(retriever: HybridRetriever) -> None:
    failure = ScriptedFailure("timeout", after_tokens=3, partial="Keys are rotated by magic")
    flow = answerer(retriever, ScriptedChatModel([failure]))
    events = list(flow.stream(ON_TOPIC))
    kinds = [e.kind for e in events]
    error_at = kinds.index("error")
    assert kinds[: error_at + 1] == ["retrieval", "token", "token", "token", "error"]
    error = events[error_at]
    assert isinstance(error, ErrorEvent) and error.code == "MODEL_TIMEOUT" and not error.fatal
    assert kinds[error_at + 1] == "token" and kinds[-1] == "done"
    done = events[-1]
    assert isinstance(done, DoneEvent)
    answer = done.answer
    assert (answer.mode, answer.degraded, answer.degraded_reason) == (
        "extractive",
        True,
        "MODEL_TIMEOUT",
    )
    assert answer.grounded and answer.citations and "magic" not in answer.text
    assert answer.text.startswith("Rotate every API key every ninety days [1].")
    assert answer.usage.completion_tokens == 3  # estimated from what arrived


def test_real_timeout_from_token_delay(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel([GOOD * 5], token_delay_s=0.01)
    answer = answerer(retriever, model, model_timeout_s=0.03).answer(ON_TOPIC)
    assert answer.mode == "extractive" and answer.degraded_reason == "MODEL_TIMEOUT"


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (ScriptedFailure("unavailable"), "MODEL_UNAVAILABLE"),
        (ScriptedFailure("error"), "MODEL_ERROR"),
        ("   ", "MODEL_EMPTY"),
    ],
)
def test_other_model_failures_degrade(
    retriever: HybridRetriever, reply: str | ScriptedFailure, reason: str
) -> None:
    answer = answerer(retriever, ScriptedChatModel([reply])).answer(ON_TOPIC)
    assert (answer.mode, answer.degraded, answer.degraded_reason) == ("extractive", True, reason)
    assert answer.degraded_detail and answer.grounded


def test_missing_model_file_error_degrades(retriever: HybridRetriever) -> None:
    def missing(request: ChatRequest) -> str:
        raise ModelError("model file not found", hint="run make setup")

    answer = answerer(retriever, ScriptedChatModel(missing)).answer(ON_TOPIC)
    assert answer.degraded_reason == "MODEL_MISSING" and answer.mode == "extractive"


def test_no_model_answers_extractively(retriever: HybridRetriever) -> None:
    answer = answerer(retriever, None).answer(ON_TOPIC)
    assert (answer.mode, answer.degraded, answer.degraded_reason) == (
        "extractive",
        True,
        "NO_MODEL",
    )
    assert answer.grounded and answer.citations and answer.model is None
    assert answer.text.startswith("Rotate every API key every ninety days [1].")


def test_extractive_on_purpose_is_not_degraded(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel([GOOD])
    flow = answerer(retriever, model)
    answer = flow.answer(ON_TOPIC, mode="extractive")
    assert (answer.mode, answer.degraded) == ("extractive", False) and model.calls == 0
    events = list(answerer(retriever, model, mode="extractive").stream(ON_TOPIC))
    assert events[0].kind == "retrieval" and events[-1].kind == "done"
    assert "error" not in [e.kind for e in events] and model.calls == 0


def test_prompt_fits_the_context_budget(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel([GOOD])
    # answer_v2 takes ~150 tokens itself: a budget with room for a source beside it (a smaller
    # one keeps a quarter for the context: test_steps.py; the default v3 takes ~250)
    flow = answerer(retriever, model, context_budget=256, template_version="answer_v2")
    answer = flow.answer(ON_TOPIC)
    assert answer.usage.prompt_tokens <= 256
    assert "[1] API keys" in answer.prompt[-1].content


def test_collection_scope(retriever: HybridRetriever) -> None:
    flow = answerer(retriever, ScriptedChatModel([GOOD]))
    assert flow.answer(ON_TOPIC, collection="kb").mode == "generative"
    elsewhere = flow.answer(ON_TOPIC, collection="other")
    assert elsewhere.mode == "cannot_answer" and elsewhere.gate
    assert elsewhere.gate.reason == "no_hits"
    with pytest.raises(QueryError):
        flow.answer(ON_TOPIC, collection="kb", flt=Filter(collection="other"))


def test_errors_that_cannot_degrade(retriever: HybridRetriever) -> None:
    flow = answerer(retriever, ScriptedChatModel([GOOD]))
    with pytest.raises(QueryError):
        flow.answer("   ")
    (event,) = list(flow.stream("   "))
    assert isinstance(event, ErrorEvent) and event.fatal and event.code == "QUERY_INVALID"


def test_constructor_checks(retriever: HybridRetriever) -> None:
    with pytest.raises(ValueError):
        AnswerPolicy(context_budget=10)
    with pytest.raises(ValueError):
        AnswerPolicy(k=0)


def test_closing_the_answer_stream_cancels_generation(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel([GOOD])
    events = answerer(retriever, model).stream(ON_TOPIC)
    assert next(events).kind == "retrieval"
    assert next(events).kind == "token"
    events.close()
    assert model.calls == 1 and model.cancelled == 1


def test_the_retrieval_event_comes_before_the_model_is_called(retriever: HybridRetriever) -> None:
    """Sources first (issue 14): the stream hands over the hits and the gate decision, then
    stops until asked for more; the model has not been called yet."""
    model = ScriptedChatModel([GOOD])
    events = answerer(retriever, model).stream(ON_TOPIC)
    first = next(events)
    assert isinstance(first, RetrievalEvent) and first.hits and first.gate.passed
    assert model.calls == 0
    assert next(events).kind == "token" and model.calls == 1
    events.close()


def test_k_is_per_question_not_set_on_the_shared_answerer(retriever: HybridRetriever) -> None:
    flow = answerer(retriever, ScriptedChatModel([GOOD]), k=3)
    assert len(flow.answer(ON_TOPIC, k=1).hits) == 1
    assert len(flow.answer(ON_TOPIC).hits) == 3 and flow.policy.k == 3
    events = list(flow.stream(ON_TOPIC, k=0))
    assert isinstance(events[-1], ErrorEvent) and events[-1].code == "QUERY_INVALID"

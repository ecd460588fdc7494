"""The answer flow with a conversation (issue 15): a follow-up is made standalone before
retrieval, the answer and its trace carry both questions, a single question is asked exactly as
before (no condenser call), an extractive answer never calls the model to condense."""

from __future__ import annotations

import pytest

from ragkeel.gateway.base import ChatRequest
from ragkeel.gateway.providers.scripted import Reply, ScriptedChatModel, ScriptedFailure
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.condense import ModelCondenser, Turn
from ragkeel.generation.condense_rules import RuleCondenser
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.generation.tracing import trace_from_answer
from ragkeel.observability import names
from ragkeel.retrieval.hybrid import HybridRetriever

from .conftest import ON_TOPIC, TEST_GATE

GOOD = "Rotate every API key every ninety days [1]."
FOLLOW_UP = "Where is that done?"
STANDALONE = "Where is the rotation of an API key done?"
HISTORY = (Turn("user", ON_TOPIC), Turn("assistant", GOOD))
POLICY = AnswerPolicy(gate_threshold=TEST_GATE, template_version="answer_v1")


def _resolving(request: ChatRequest) -> Reply:
    return STANDALONE if FOLLOW_UP in request.messages[-1].content else "unexpected"


@pytest.fixture
def condense_model() -> ScriptedChatModel:
    return ScriptedChatModel(_resolving, name="cheap")


def _answerer(retriever: HybridRetriever, condense_model: ScriptedChatModel) -> Answerer:
    condenser = ModelCondenser(condense_model, RuleCondenser())
    return Answerer(retriever, ScriptedChatModel((GOOD,)), POLICY, condenser=condenser)


def test_a_follow_up_is_retrieved_and_asked_as_its_standalone_question(
    retriever: HybridRetriever, condense_model: ScriptedChatModel
) -> None:
    answerer = _answerer(retriever, condense_model)
    answer = answerer.answer(FOLLOW_UP, history=HISTORY)

    assert answer.question == STANDALONE
    assert answer.condensed is not None and answer.condensed.original == FOLLOW_UP
    assert answer.condensed.condenser == "model" and answer.condensed.model == "cheap"
    assert condense_model.calls == 1 and answer.mode == "generative"
    assert answer.hits[0].chunk.source.endswith("keys.md")
    assert isinstance(answerer.model, ScriptedChatModel)
    (request,) = answerer.model.requests
    assert STANDALONE in request.messages[-1].content  # the prompt asks the standalone question
    assert FOLLOW_UP not in request.messages[-1].content
    ms = answer.latency_ms
    assert ms[names.STAGE_CONDENSE] > 0 and ms[names.STAGE_TOTAL] >= ms[names.STAGE_CONDENSE]


def test_the_last_message_alone_retrieves_something_else(retriever: HybridRetriever) -> None:
    """The control: without the conversation, the follow-up does not find the keys document
    (so the test above can fail)."""
    answerer = Answerer(retriever, ScriptedChatModel((GOOD,)), POLICY)  # no condenser
    answer = answerer.answer(FOLLOW_UP, history=HISTORY)
    assert answer.condensed is None and answer.question == FOLLOW_UP
    assert answer.mode == "cannot_answer"  # below the gate: nothing it asks for is found


def test_a_single_question_is_asked_as_before(
    retriever: HybridRetriever, condense_model: ScriptedChatModel
) -> None:
    answerer = _answerer(retriever, condense_model)
    for history in ((), (Turn("assistant", "Hello! Ask me anything."),)):
        answer = answerer.answer(ON_TOPIC, history=history)
        assert answer.condensed is None and answer.question == ON_TOPIC
        assert names.STAGE_CONDENSE not in answer.latency_ms
    assert condense_model.calls == 0
    trace = trace_from_answer(answer, route=names.ROUTE_API_CHAT, keep_prompt_text=False)
    assert trace.gateway is not None and "condense" not in trace.gateway
    assert names.CONDENSE_CONDENSER not in trace.attributes()


def test_the_trace_records_both_questions(
    retriever: HybridRetriever, condense_model: ScriptedChatModel
) -> None:
    answer = _answerer(retriever, condense_model).answer(FOLLOW_UP, history=HISTORY)
    trace = trace_from_answer(answer, route=names.ROUTE_API_CHAT, keep_prompt_text=False)
    assert trace.question == STANDALONE
    assert trace.gateway is not None
    record = trace.gateway["condense"]
    assert record["original"] == FOLLOW_UP and record["question"] == STANDALONE
    assert record["condenser"] == "model" and record["turns"] == 2 and record["changed"]
    attrs = trace.attributes()
    assert attrs[names.CONDENSE_CONDENSER] == "model" and attrs[names.CONDENSE_CHANGED] is True
    assert names.CONDENSE_FALLBACK not in attrs


def test_a_failed_model_condenser_falls_back_to_the_rules_in_the_trace(
    retriever: HybridRetriever,
) -> None:
    failing = ScriptedChatModel((ScriptedFailure("unavailable"),))
    condenser = ModelCondenser(failing, RuleCondenser())
    answerer = Answerer(retriever, ScriptedChatModel((GOOD,)), POLICY, condenser=condenser)
    answer = answerer.answer(FOLLOW_UP, history=HISTORY)
    assert answer.condensed is not None and answer.condensed.fallback == "MODEL_UNAVAILABLE"
    assert answer.question.startswith("Where is that done (") and "API" in answer.question
    assert answer.mode == "generative"  # the answer itself is unaffected
    attrs = trace_from_answer(answer, route="api.chat", keep_prompt_text=False).attributes()
    assert attrs[names.CONDENSE_CONDENSER] == "rules"
    assert attrs[names.CONDENSE_FALLBACK] == "MODEL_UNAVAILABLE"


def test_an_extractive_answer_condenses_with_the_rules(
    retriever: HybridRetriever, condense_model: ScriptedChatModel
) -> None:
    answerer = _answerer(retriever, condense_model)
    answer = answerer.answer(FOLLOW_UP, history=HISTORY, mode="extractive")
    assert answer.condensed is not None and answer.condensed.condenser == "rules"
    assert condense_model.calls == 0 and answer.mode == "extractive"
    assert answer.hits[0].chunk.source.endswith("keys.md")


def test_streamed_events_end_with_the_condensed_answer(
    retriever: HybridRetriever, condense_model: ScriptedChatModel
) -> None:
    events = list(_answerer(retriever, condense_model).stream(FOLLOW_UP, history=HISTORY))
    assert events[0].kind == "retrieval"
    done = events[-1]
    assert done.kind == "done" and done.answer.condensed is not None
    assert done.answer.question == STANDALONE

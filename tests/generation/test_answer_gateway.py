"""What the answer flow hands the gateway (deadline, tenant, max_cost, routing hints, a call
log) and what it reports back (which rung answered, metered cost, the call log)."""

from __future__ import annotations

import json

import pytest

from ragkeel.clock import ManualClock
from ragkeel.gateway.base import ChatRequest, Usage
from ragkeel.gateway.budget import BudgetChatModel
from ragkeel.gateway.calllog import CallLog, current_log
from ragkeel.gateway.metering import MeteredChatModel
from ragkeel.gateway.pricing import Price, PriceTable
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.generation.answer import DoneEvent, TokenEvent
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy, Budget
from ragkeel.generation.tracing import trace_from_answer
from ragkeel.retrieval.hybrid import HybridRetriever

from .conftest import ON_TOPIC, TEST_GATE

REPLY = "Rotate every API key every ninety days [1]."
PRICE = Price(input_per_mtok=1.0, output_per_mtok=4.0)


def test_the_request_carries_deadline_tenant_budget_and_hints(
    retriever: HybridRetriever,
) -> None:
    clock = ManualClock(start=500.0)
    seen: list[ChatRequest] = []
    logs: list[CallLog | None] = []

    def reply(request: ChatRequest) -> str:
        seen.append(request)
        logs.append(current_log())  # the call is recorded into the answer's call log
        return REPLY

    answerer = Answerer(
        retriever,
        ScriptedChatModel(reply),
        AnswerPolicy(gate_threshold=TEST_GATE, deadline_s=30.0),
        clock=clock,
    )
    answer = answerer.answer(ON_TOPIC, budget=Budget(tenant="acme", max_cost=0.01))
    (request,) = seen
    assert request.deadline == pytest.approx(530.0)
    assert request.tenant == "acme" and request.max_cost == 0.01
    assert request.hints is not None and request.hints.question == ON_TOPIC
    assert request.hints.top_score == pytest.approx(answer.gate.top_dense if answer.gate else 0)
    assert logs[0] is not None
    assert answer.mode == "generative" and answer.served_by == "scripted"
    assert answer.tenant == "acme"


def test_metered_cost_counts_every_call_and_the_trace_says_who_answered(
    retriever: HybridRetriever,
) -> None:
    model = MeteredChatModel(ScriptedChatModel([REPLY]), deployment="primary", price=PRICE)
    answer = Answerer(retriever, model, AnswerPolicy(gate_threshold=TEST_GATE)).answer(ON_TOPIC)
    assert answer.gateway is not None
    (attempt,) = answer.gateway["attempts"]
    assert attempt["deployment"] == "primary" and attempt["outcome"] == "ok"
    assert answer.cost == pytest.approx(PRICE.cost(answer.usage)) and answer.cost > 0
    trace = trace_from_answer(answer, route="cli.ask", keep_prompt_text=False)
    assert trace.gateway is not None and trace.gateway["served_by"] == "scripted"


def test_a_failed_call_is_still_paid_for_and_the_extractive_rung_answers(
    retriever: HybridRetriever,
) -> None:
    failing = ScriptedChatModel([ScriptedFailure("unavailable", after_tokens=3, partial=REPLY)])
    model = MeteredChatModel(failing, deployment="primary", price=PRICE)
    answer = Answerer(retriever, model, AnswerPolicy(gate_threshold=TEST_GATE)).answer(ON_TOPIC)
    assert answer.mode == "extractive" and answer.degraded
    assert answer.served_by == "extractive" and answer.degraded_reason == "MODEL_UNAVAILABLE"
    assert answer.usage.completion_tokens == 3  # what the failed stream had sent
    assert answer.cost == pytest.approx(PRICE.cost(answer.usage))


def test_max_tokens_shrinks_the_context_and_the_answer_to_fit(
    retriever: HybridRetriever,
) -> None:
    seen: list[ChatRequest] = []

    def reply(request: ChatRequest) -> str:
        seen.append(request)
        return REPLY

    policy = AnswerPolicy(gate_threshold=TEST_GATE, template_version="answer_v2")  # ~150 tokens
    answerer = Answerer(retriever, ScriptedChatModel(reply), policy)
    roomy = answerer.answer(ON_TOPIC)
    tight = answerer.answer(ON_TOPIC, budget=Budget(max_tokens=420))
    assert seen[1].max_tokens < seen[0].max_tokens
    prompt_tokens = sum(ScriptedChatModel().count_tokens(m.content) for m in seen[1].messages)
    assert prompt_tokens + seen[1].max_tokens <= 420
    assert tight.usage.prompt_tokens <= roomy.usage.prompt_tokens
    assert tight.gateway is not None
    assert any(d["policy"] == "budget" for d in tight.gateway["decisions"])


def test_max_tokens_too_small_for_any_context_degrades_with_budget_exceeded(
    retriever: HybridRetriever,
) -> None:
    model = ScriptedChatModel([REPLY])
    answer = Answerer(retriever, model, AnswerPolicy(gate_threshold=TEST_GATE)).answer(
        ON_TOPIC, budget=Budget(max_tokens=50)
    )
    assert answer.degraded and answer.degraded_reason == "BUDGET_EXCEEDED"
    assert answer.mode == "extractive" and model.calls == 0


def test_over_max_cost_the_answer_retries_once_with_half_the_context(
    retriever: HybridRetriever,
) -> None:
    seen: list[ChatRequest] = []

    def reply(request: ChatRequest) -> str:
        seen.append(request)
        return REPLY

    prices = PriceTable.from_mapping({"scripted": PRICE})
    metered = MeteredChatModel(ScriptedChatModel(reply), price=PRICE)
    budgeted = BudgetChatModel(metered, prices, min_answer_tokens=64)
    answerer = Answerer(
        retriever, budgeted, AnswerPolicy(gate_threshold=TEST_GATE, max_answer_tokens=64)
    )
    full = answerer.answer(ON_TOPIC)  # no limit: the whole context
    assert full.mode == "generative" and len(seen) == 1
    full_prompt = full.usage.prompt_tokens
    # allow a bit less than the full prompt at the minimum answer: only a smaller context fits
    allowance = PRICE.cost(Usage(full_prompt - 20, 64))
    answer = answerer.answer(ON_TOPIC, budget=Budget(max_cost=allowance))
    assert answer.mode == "generative" and not answer.degraded
    assert len(seen) == 2 and answer.usage.prompt_tokens < full_prompt
    assert 0 < answer.cost <= allowance
    assert answer.gateway is not None
    reasons = [d["reason"] for d in answer.gateway["decisions"] if d["policy"] == "budget"]
    assert any("half the context" in r for r in reasons)


def test_over_max_cost_even_with_the_smallest_context_the_answer_is_extractive(
    retriever: HybridRetriever,
) -> None:
    prices = PriceTable.from_mapping({"scripted": PRICE})
    model = ScriptedChatModel([REPLY])
    budgeted = BudgetChatModel(model, prices, min_answer_tokens=64)
    answer = Answerer(retriever, budgeted, AnswerPolicy(gate_threshold=TEST_GATE)).answer(
        ON_TOPIC, budget=Budget(max_cost=1e-9)
    )
    assert answer.mode == "extractive" and answer.degraded_reason == "BUDGET_EXCEEDED"
    assert model.calls == 0 and answer.cost == 0.0


def test_the_answer_flow_retrieves_in_the_configured_mode(retriever: HybridRetriever) -> None:
    dense = Answerer(
        retriever, None, AnswerPolicy(gate_threshold=TEST_GATE, retrieval_mode="dense")
    )
    hits = dense.answer(ON_TOPIC).hits
    assert hits and all(h.keyword_rank is None and h.dense_rank is not None for h in hits)
    bm25 = Answerer(
        retriever,
        None,
        AnswerPolicy(gate_threshold=TEST_GATE, gate_keyword_threshold=0.1, retrieval_mode="bm25"),
    )
    answer = bm25.answer(ON_TOPIC)
    assert answer.hits and all(h.dense_rank is None for h in answer.hits)
    assert answer.gate is not None and answer.gate.reason == "keyword"


SCHEMA = {
    "type": "object",
    "required": ["rotation_days"],
    "properties": {"rotation_days": {"type": "integer"}, "note": {"type": "string"}},
}


def test_an_output_schema_asks_for_json_and_keeps_it_intact(retriever: HybridRetriever) -> None:
    seen: list[ChatRequest] = []

    def reply(request: ChatRequest) -> str:
        seen.append(request)
        return '{"rotation_days": 90, "note": "Rotate every API key every ninety days"}'

    answerer = Answerer(retriever, ScriptedChatModel(reply), AnswerPolicy(gate_threshold=TEST_GATE))
    answer = answerer.answer(ON_TOPIC, output_schema=SCHEMA)
    (request,) = seen
    assert request.json_schema == SCHEMA
    assert '"rotation_days"' in request.messages[-1].content  # the schema is in the prompt
    assert answer.template_version == "answer_json_v1" and answer.mode == "generative"
    # an unsupported sentence gets no [n] appended inside a JSON answer
    assert json.loads(answer.text) == {
        "rotation_days": 90,
        "note": "Rotate every API key every ninety days",
    }
    plain = answerer.answer(ON_TOPIC)
    assert plain.template_version == answerer.template.version and seen[1].json_schema is None


def test_interleaved_answer_streams_each_record_into_their_own_call_log(
    retriever: HybridRetriever,
) -> None:
    """The call log is context-local: two answers advanced in turns on one thread (as a server
    may) must not see each other's attempts, nor leave a log current behind them."""

    def answerer(deployment: str) -> Answerer:
        model = MeteredChatModel(ScriptedChatModel([REPLY]), deployment=deployment, price=PRICE)
        return Answerer(retriever, model, AnswerPolicy(gate_threshold=TEST_GATE))

    first = answerer("first").stream(ON_TOPIC)
    while not isinstance(next(first), TokenEvent):  # the first answer is mid-stream
        pass
    assert current_log() is None
    second = [e for e in answerer("second").stream(ON_TOPIC) if isinstance(e, DoneEvent)]
    rest = [e for e in first if isinstance(e, DoneEvent)]
    for (done,), deployment in ((rest, "first"), (second, "second")):
        assert done.answer.gateway is not None
        (attempt,) = done.answer.gateway["attempts"]
        assert attempt["deployment"] == deployment and attempt["outcome"] == "ok"
    assert current_log() is None


def test_a_call_the_budget_refused_costs_nothing_even_with_a_price_table(
    retriever: HybridRetriever,
) -> None:
    """Regression: with ``cost_of`` (the container always passes the price table), the answer
    priced the *estimated* prompt of a call the budget refused before it was sent: an
    extractive answer reported a cost (and 371 prompt tokens) that nobody was charged."""
    prices = PriceTable.from_mapping({"scripted": PRICE})
    model = ScriptedChatModel([REPLY])
    budgeted = BudgetChatModel(model, prices, min_answer_tokens=64)
    answerer = Answerer(
        retriever,
        budgeted,
        AnswerPolicy(gate_threshold=TEST_GATE),
        cost_of=lambda name, usage: PRICE.cost(usage),
    )
    answer = answerer.answer(ON_TOPIC, budget=Budget(max_cost=1e-9))
    assert answer.mode == "extractive" and answer.degraded_reason == "BUDGET_EXCEEDED"
    assert model.calls == 0
    assert answer.cost == 0.0 and answer.usage.prompt_tokens == 0, (answer.cost, answer.usage)

"""The steps of the answer flow alone (generation/steps.py), each with explicit inputs: a real
SQLite index only where retrieval is the step, hand-made hits and the scripted model elsewhere."""

from __future__ import annotations

import json

import pytest

from ragkeel.errors import BudgetExceededError
from ragkeel.gateway.base import ChatMessage, ChatRequest, Usage
from ragkeel.gateway.calllog import CallLog
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.generation.answer import TokenEvent
from ragkeel.generation.context import Packing
from ragkeel.generation.gate import AnswerGate
from ragkeel.generation.policy import AnswerPolicy, Budget
from ragkeel.generation.steps import (
    SCHEMA_UNSUPPORTED,
    SCHEMA_UNSUPPORTED_DETAIL,
    Degradation,
    Ending,
    Generated,
    Packed,
    Retrieved,
    Timer,
    extract,
    finish,
    gate,
    generate,
    pack,
    retrieve,
    verify,
)
from ragkeel.generation.templates import REFUSAL_PHRASE, load_template
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.types import Confidence, SearchHit, SearchResult

from .conftest import OFF_TOPIC, ON_TOPIC, TEST_GATE, count, hit

KEYS = "Rotate every API key every ninety days from the admin console."
LEAKS = "Revoke a leaked key at once; revoked keys stop working within one minute."
QUESTION = "How often should API keys be rotated?"


def retrieved(
    *texts: str,
    dense: float = 0.5,
    budget: Budget = Budget(),
    schema: dict[str, object] | None = None,
) -> Retrieved:
    hits = tuple(
        hit(f"c{i}", t, document_id=f"d{i}", title=f"T{i}", dense=dense)
        for i, t in enumerate(texts, 1)
    )
    return Retrieved(QUESTION, result_of(hits, dense), budget, schema)


def result_of(hits: tuple[SearchHit, ...], dense: float) -> SearchResult:
    confidence = Confidence(1.0, 0.5, dense if hits else None, None, agreement=False)
    return SearchResult(QUESTION, "hybrid", hits, confidence)


def packed(question: Retrieved, **policy: object) -> Packed:
    return pack(question, load_template("answer_v2"), AnswerPolicy(**policy), count)  # type: ignore[arg-type]


# retrieve


def test_retrieve_times_the_search_and_its_stages(retriever: HybridRetriever) -> None:
    timer = Timer()
    result = retrieve(retriever, ON_TOPIC, k=2, mode="hybrid", flt=None, timer=timer)
    assert 0 < len(result.hits) <= 2
    assert {"retrieve", "embed", "keyword", "dense", "fuse"} <= set(timer.ms)
    only_bm25 = retrieve(retriever, ON_TOPIC, k=2, mode="bm25", flt=None, timer=Timer())
    assert all(h.dense_rank is None for h in only_bm25.hits)


# gate


def test_gate_refuses_below_the_threshold_whatever_the_mode(retriever: HybridRetriever) -> None:
    strict = AnswerGate(TEST_GATE)
    off = retriever.search(OFF_TOPIC, 8)
    for mode in ("generative", "extractive"):
        gated = gate(off, strict, mode, has_model=True)  # type: ignore[arg-type]
        assert gated.route == "refuse" and not gated.decision.passed and gated.degraded is None
    on = retriever.search(ON_TOPIC, 8)
    assert gate(on, strict, "generative", has_model=True).route == "generate"


def test_gate_routes_to_the_extractive_answer() -> None:
    found = retrieved(KEYS, dense=0.9).result
    asked = gate(found, AnswerGate(0.5), "extractive", has_model=True)
    assert (asked.route, asked.degraded) == ("extractive", None)
    no_model = gate(found, AnswerGate(0.5), "generative", has_model=False)
    assert no_model.route == "extractive" and no_model.decision.passed
    assert no_model.degraded is not None and no_model.degraded.code == "NO_MODEL"
    nothing = gate(result_of((), 0.0), AnswerGate(0.5), "generative", has_model=True)
    assert nothing.route == "refuse" and nothing.decision.reason == "no_hits"


# pack


def test_pack_fits_the_prompt_into_the_context_budget() -> None:
    question = retrieved(KEYS, LEAKS)
    roomy = packed(question)
    assert [s.number for s in roomy.context.sources] == [1, 2]
    assert roomy.answer_tokens == 256 and roomy.note is None and roomy.schema_text == ""
    prompt = roomy.template.render(QUESTION, roomy.context.render())
    assert sum(count(m.content) for m in prompt) <= 1000


def test_pack_keeps_a_quarter_of_the_budget_for_a_template_larger_than_it() -> None:
    # the documented floor: the shipped template alone takes more than 128 tokens
    overhead = sum(count(m.content) for m in load_template("answer_v2").render(QUESTION, ""))
    assert overhead > 128
    tight = packed(retrieved(KEYS, LEAKS), context_budget=128)
    assert 0 < tight.context.tokens <= 128 // 4
    assert [s.number for s in tight.context.sources] == [1]


def test_pack_shrinks_context_and_answer_to_a_requests_max_tokens() -> None:
    question = retrieved(KEYS, LEAKS, budget=Budget(max_tokens=400))
    fitted = packed(question)
    prompt = fitted.template.render(QUESTION, fitted.context.render())
    assert sum(count(m.content) for m in prompt) + fitted.answer_tokens <= 400
    assert fitted.answer_tokens == 100 and fitted.note is not None
    assert "context 848 -> 148 tokens to fit max_tokens 400" in fitted.note
    with pytest.raises(BudgetExceededError):
        packed(retrieved(KEYS, budget=Budget(max_tokens=100)))


def test_pack_shows_an_output_schema_to_the_json_prompt() -> None:
    schema = {"type": "object", "properties": {"days": {"type": "integer"}}}
    question = retrieved(KEYS, schema=schema)
    with_schema = pack(question, load_template("answer_json_v1"), AnswerPolicy(), count)
    assert json.loads(with_schema.schema_text) == schema


# generate


def request_for(prompt: tuple[ChatMessage, ...], max_tokens: int) -> ChatRequest:
    return ChatRequest(prompt, max_tokens=max_tokens)


def test_generate_yields_each_token_as_it_comes_and_returns_what_it_spent() -> None:
    model = ScriptedChatModel(["Rotate every API key every ninety days [1]."])
    question = retrieved(KEYS, LEAKS)
    stream = generate(model, question, packed(question), request_for, CallLog(), Timer())
    first = next(stream)
    assert isinstance(first, TokenEvent) and model.calls == 1
    rest: list[str] = [first.text]
    try:
        while True:
            event = next(stream)
            assert isinstance(event, TokenEvent)
            rest.append(event.text)
    except StopIteration as stop:
        generated: Generated = stop.value
    assert "".join(rest).strip() == generated.text == "Rotate every API key every ninety days [1]."
    assert generated.degraded is None and generated.model == "scripted"
    assert generated.template_version == "answer_v2" and generated.usage.completion_tokens > 0
    assert generated.prompt == model.requests[0].messages


def test_closing_generate_cancels_the_model_stream() -> None:
    model = ScriptedChatModel(["Rotate every API key every ninety days [1]."])
    question = retrieved(KEYS)
    stream = generate(model, question, packed(question), request_for, CallLog(), Timer())
    next(stream)
    stream.close()
    assert model.cancelled == 1


def test_generate_returns_a_failure_as_a_degradation() -> None:
    model = ScriptedChatModel([ScriptedFailure("timeout", after_tokens=1, partial="Rotate every")])
    question = retrieved(KEYS)
    events = generate(model, question, packed(question), request_for, CallLog(), Timer())
    tokens = []
    try:
        while True:
            tokens.append(next(events))
    except StopIteration as stop:
        generated: Generated = stop.value
    assert len(tokens) == 1
    assert generated.degraded is not None and generated.degraded.code == "MODEL_TIMEOUT"
    assert generated.usage.prompt_tokens > 0  # unmetered: estimated


# verify


def test_verify_attributes_an_uncited_supported_sentence() -> None:
    context = packed(retrieved(KEYS, LEAKS)).context
    verified = verify(
        "Rotate every API key every ninety days.", context, min_support=0.5, json_answer=False
    )
    assert verified.inferred == (1,) and verified.text.endswith("[1].")
    assert verified.check.grounded and not verified.check.refusal


def test_verify_leaves_a_json_answer_as_it_is() -> None:
    context = packed(retrieved(KEYS)).context
    text = '{"days": 90}'
    verified = verify(text, context, min_support=0.5, json_answer=True)
    assert verified.text == text and verified.inferred == ()


def test_verify_reports_invented_citations_and_refusals() -> None:
    context = packed(retrieved(KEYS)).context
    invented = verify(
        "Rotate every API key every ninety days [7].", context, min_support=0.5, json_answer=False
    )
    assert invented.check.invalid == (7,) and not invented.check.grounded
    refusal = verify(REFUSAL_PHRASE, context, min_support=0.5, json_answer=False)
    assert refusal.check.refusal and refusal.inferred == ()


# extract


def test_extract_quotes_cited_sentences() -> None:
    question = retrieved(KEYS, LEAKS)
    extracted = extract(question, packed(question).context, None, sentences=1, min_support=0.5)
    assert extracted is not None and extracted.degraded is None
    assert len(extracted.sentences) == 1 and "[1]" in extracted.verified.text
    assert extracted.verified.check.grounded


def test_extract_for_an_output_schema_is_degraded() -> None:
    question = retrieved(KEYS, schema={"type": "object"})
    context = packed(question).context
    fresh = extract(question, context, None, sentences=3, min_support=0.5)
    assert fresh is not None
    assert fresh.degraded == Degradation(SCHEMA_UNSUPPORTED, SCHEMA_UNSUPPORTED_DETAIL)
    timeout = Degradation("MODEL_TIMEOUT", "too slow")
    after = extract(question, context, timeout, sentences=3, min_support=0.5)
    assert after is not None and after.degraded is not None
    assert after.degraded.code == "MODEL_TIMEOUT"
    assert after.degraded.detail == f"too slow; {SCHEMA_UNSUPPORTED_DETAIL}"


def test_extract_with_nothing_to_quote_is_none() -> None:
    question = retrieved(KEYS)
    empty = pack(retrieved(), load_template("answer_v2"), AnswerPolicy(), count).context
    assert extract(question, empty, None, sentences=3, min_support=0.5) is None


# finish


def test_finish_a_refusal() -> None:
    question = retrieved(KEYS, budget=Budget(tenant="acme"))
    decision = AnswerGate(0.9).decide(question.result)
    answer = finish(
        question, decision, Ending.refusal(), None, CallLog(), cost=0.0, latency_ms={"total": 1.0}
    )
    assert (answer.mode, answer.text, answer.citations) == ("cannot_answer", REFUSAL_PHRASE, ())
    assert answer.grounded and not answer.degraded and answer.served_by == "cannot_answer"
    assert answer.model is None and answer.template_version is None and answer.prompt == ()
    assert answer.gateway is None and answer.tenant == "acme" and answer.gate == decision
    assert answer.hits == question.result.hits and answer.latency_ms == {"total": 1.0}


def test_finish_a_generated_answer_and_a_degraded_one() -> None:
    question = retrieved(KEYS, LEAKS)
    context = packed(question).context
    text = "Rotate every API key every ninety days [1]."
    verified = verify(text, context, min_support=0.5, json_answer=False)
    prompt = (ChatMessage("user", "q"),)
    call = Generated(text, context, prompt, Usage(10, 5), "m1", "answer_v2")
    decision = AnswerGate(0.1).decide(question.result)
    ending = Ending(verified.text, "generative", context, verified)
    answer = finish(question, decision, ending, call, CallLog(), cost=0.5, latency_ms={})
    (citation,) = answer.citations
    assert citation.number == 1 and citation.chunk_id == "c1" and answer.grounded
    assert (answer.served_by, answer.model, answer.usage, answer.cost) == (
        "m1",
        "m1",
        Usage(10, 5),
        0.5,
    )
    assert answer.prompt == prompt and answer.template_version == "answer_v2"
    degraded = Ending(
        verified.text, "extractive", context, verified, Degradation("MODEL_ERROR", "boom")
    )
    fallback = finish(question, decision, degraded, call, CallLog(), cost=0.0, latency_ms={})
    assert fallback.served_by == "extractive" and fallback.degraded
    assert (fallback.degraded_reason, fallback.degraded_detail) == ("MODEL_ERROR", "boom")


def test_pack_cuts_the_hits_as_the_policy_says() -> None:
    question = retrieved(f"{KEYS} The console also draws usage graphs per day.", LEAKS)
    whole = packed(question)
    assert "usage graphs" in whole.context.render() and whole.context.packing == "chunks"
    cut = packed(question, packing=Packing("sentences", neighbours=0))
    assert cut.packing == Packing("sentences", neighbours=0)  # the over-budget retry cuts alike
    assert cut.context.packing == "sentences"
    assert [s.text for s in cut.context.sources] == [f"{KEYS} …"]  # "keys" alone: below the floor
    assert cut.context.left_out == ("c2",)

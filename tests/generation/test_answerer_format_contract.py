"""An answer asked for JSON (an ``output_schema``) that ends up extractive is never reported as
a fine answer: quoted sentences are not JSON, so it is ``degraded`` whatever the path (the mode
asked, no model, a model failure), with the broken format said in ``degraded_detail``."""

from __future__ import annotations

from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.retrieval.hybrid import HybridRetriever

from .conftest import ON_TOPIC, TEST_GATE

SCHEMA = {"type": "object", "properties": {"rotation_days": {"type": "integer"}}}


def test_extractive_mode_with_a_schema_is_degraded(retriever: HybridRetriever) -> None:
    model = ScriptedChatModel(['{"rotation_days": 90}'])
    answerer = Answerer(retriever, model, AnswerPolicy(gate_threshold=TEST_GATE))
    answer = answerer.answer(ON_TOPIC, mode="extractive", output_schema=SCHEMA)
    assert answer.mode == "extractive" and answer.degraded and model.calls == 0
    assert answer.degraded_reason == "OUTPUT_SCHEMA_UNSUPPORTED"
    assert answer.degraded_detail is not None and "not JSON" in answer.degraded_detail
    plain = answerer.answer(ON_TOPIC, mode="extractive")  # no schema asked: nothing broken
    assert plain.mode == "extractive" and not plain.degraded


def test_a_fallback_keeps_its_reason_and_says_the_format_is_broken(
    retriever: HybridRetriever,
) -> None:
    model = ScriptedChatModel([ScriptedFailure("unavailable")])
    failing = Answerer(retriever, model, AnswerPolicy(gate_threshold=TEST_GATE))
    answer = failing.answer(ON_TOPIC, output_schema=SCHEMA)
    assert answer.mode == "extractive" and answer.degraded_reason == "MODEL_UNAVAILABLE"
    assert answer.degraded_detail is not None and "not JSON" in answer.degraded_detail
    no_model = Answerer(retriever, None, AnswerPolicy(gate_threshold=TEST_GATE)).answer(
        ON_TOPIC, output_schema=SCHEMA
    )
    assert no_model.degraded_reason == "NO_MODEL"
    assert no_model.degraded_detail is not None and "not JSON" in no_model.degraded_detail

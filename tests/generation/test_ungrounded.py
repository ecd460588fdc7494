"""The policy for a generated answer the citation check finds unsupported (issue 11): as is,
stripped of its unsupported sentences, or the extractive answer (degraded ``UNGROUNDED``)."""

from __future__ import annotations

import pytest

from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.generation.answer import ErrorEvent
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.citations import check_answer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.generation.ungrounded import UNGROUNDED, apply_policy, strip_sentences
from ragkeel.retrieval.hybrid import HybridRetriever

from .conftest import ON_TOPIC, TEST_GATE, context_of

GOOD = "Rotate every API key every ninety days [1]."
INVENTED = "The moon landing was filmed in a studio in Nevada [1]."


def test_strip_sentences_tidies_the_spaces_left() -> None:
    assert strip_sentences(f"{GOOD} {INVENTED} Done [1].", [INVENTED]) == f"{GOOD} Done [1]."
    assert strip_sentences("a\n\nb", ["b"]) == "a"


@pytest.mark.parametrize("policy", ["as_is", "strip", "extractive"])
def test_a_grounded_answer_is_left_alone_by_every_policy(policy: str) -> None:
    context = context_of("Rotate every API key every ninety days.")
    check = check_answer(GOOD, context)
    assert apply_policy(policy, GOOD, check) == (GOOD, None)  # type: ignore[arg-type]


def test_policies_on_an_unsupported_answer() -> None:
    context = context_of("Rotate every API key every ninety days.")
    text = f"{GOOD} {INVENTED}"
    check = check_answer(text, context)
    assert not check.grounded
    assert apply_policy("as_is", text, check) == (text, None)
    assert apply_policy("strip", text, check) == (GOOD, None)
    _, degraded = apply_policy("extractive", text, check)
    assert degraded is not None and degraded[0] == UNGROUNDED


def test_strip_falls_back_when_nothing_supported_is_left() -> None:
    context = context_of("Rotate every API key every ninety days.")
    check = check_answer(INVENTED, context)
    _, degraded = apply_policy("strip", INVENTED, check)
    assert degraded is not None and degraded[0] == UNGROUNDED


def flow(retriever: HybridRetriever, reply: str, policy: str) -> Answerer:
    config = AnswerPolicy(gate_threshold=TEST_GATE, ungrounded=policy)  # type: ignore[arg-type]
    return Answerer(retriever, ScriptedChatModel([reply]), config)


def test_the_answer_flow_strips_unsupported_sentences(retriever: HybridRetriever) -> None:
    answer = flow(retriever, f"{GOOD} {INVENTED}", "strip").answer(ON_TOPIC)
    assert (answer.text, answer.grounded, answer.degraded) == (GOOD, True, False)


def test_the_answer_flow_falls_back_to_extractive(retriever: HybridRetriever) -> None:
    events = list(flow(retriever, f"{GOOD} {INVENTED}", "extractive").stream(ON_TOPIC))
    assert [e.code for e in events if isinstance(e, ErrorEvent)] == [UNGROUNDED]
    answer = events[-1].answer  # type: ignore[union-attr]
    assert answer.mode == "extractive" and answer.degraded_reason == UNGROUNDED
    assert "moon" not in answer.text and "ninety days" in answer.text


def test_as_is_returns_the_unsupported_answer_flagged(retriever: HybridRetriever) -> None:
    answer = flow(retriever, f"{GOOD} {INVENTED}", "as_is").answer(ON_TOPIC)
    assert answer.text == f"{GOOD} {INVENTED}" and not answer.grounded and not answer.degraded
    assert answer.unsupported_sentences == (INVENTED,)


def test_json_answers_are_never_cut(retriever: HybridRetriever) -> None:
    reply = '{"answer": "The moon landing was filmed in Nevada [1]"}'
    answer = flow(retriever, reply, "strip").answer(ON_TOPIC, output_schema={"type": "object"})
    assert answer.text == reply and answer.mode == "generative"

"""Condensing a follow-up question (issue 15): the rules on their own, the condenser contract
over the rules and the model condenser (scripted model), and the model condenser's fallback to
the rules on every kind of failure."""

from __future__ import annotations

import re

import pytest

from ragkeel.errors import TemplateError
from ragkeel.gateway.base import ChatRequest
from ragkeel.gateway.providers.scripted import Reply, ScriptedChatModel, ScriptedFailure
from ragkeel.generation.condense import (
    Condenser,
    ModelCondenser,
    Turn,
    load_condense_prompt,
    standalone,
)
from ragkeel.generation.condense_rules import RuleCondenser, on_topic, salient
from ragkeel.testing.contracts.condenser import CondenserContract

RULES = RuleCondenser()


def _after(question: str, *earlier: str) -> str:
    return RULES.condense(question, [Turn("user", q) for q in earlier]).question


@pytest.mark.parametrize(
    ("previous", "follow_up", "expected"),
    [
        # a pronoun: the previous question's names, numbers and content words are added
        (
            "How many points did the Broncos score in Super Bowl 50?",
            "Who was their head coach?",
            "Who was their head coach (Broncos; Super Bowl 50; many; points; score)?",
        ),
        (
            "How do I rotate an API key?",
            "How long does it take?",
            "How long does it take (API; rotate; key)?",
        ),
        # a demonstrative on its own, "there" not existential, an opening "and"
        (
            "When was the Berlin Wall built?",
            "Why was that?",
            "Why was that (When was the Berlin Wall built)?",
        ),
        (
            "Where is Jacksonville?",
            "How many people live there?",
            "How many people live there (Jacksonville)?",
        ),
        (
            "Who designed the Eiffel Tower?",
            "And when was the tower finished?",
            "And when was the tower finished (Eiffel Tower; designed)?",
        ),
        # an ellipsis: the one name (or number) of the same kind is replaced
        (
            "How many points did the Broncos score?",
            "What about the Panthers?",
            "How many points did the Panthers score?",
        ),
        (
            "How many interceptions were there in 2015?",
            "And for 2016?",
            "How many interceptions were there in 2016?",
        ),
        (
            "Wie viele Punkte erzielten die Broncos 2015?",
            "Und was ist mit 2016?",
            "Wie viele Punkte erzielten die Broncos 2016?",
        ),
        # ... or, with two of that kind, the whole previous question is added
        (
            "How many points did the Broncos score in Super Bowl 50?",
            "What about the Panthers?",
            "What about the Panthers (How many points did the Broncos score in Super Bowl 50)?",
        ),
        # a short question
        ("Who won Super Bowl 50?", "Why?", "Why (Who won Super Bowl 50)?"),
        # German pronouns
        (
            "Wie rotiere ich einen API-Schlüssel?",
            "Wie lange dauert das?",
            "Wie lange dauert das (API-Schlüssel; rotiere)?",
        ),
        (
            "Wann wurde der Kölner Dom gebaut?",
            "Wer hat ihn damals entworfen?",
            "Wer hat ihn damals entworfen (Kölner Dom; gebaut)?",
        ),
    ],
)
def test_rules_resolve_pronouns_and_ellipsis(previous: str, follow_up: str, expected: str) -> None:
    assert _after(follow_up, previous) == expected


@pytest.mark.parametrize(
    "question",
    [
        "Who won Super Bowl XLIX?",
        "Who was the first quarterback that took two teams to the Super Bowl?",  # relative "that"
        "Is there a rotation limit for API keys?",  # existential "there"
        "How old was Elway during his Super Bowl XXXIII win?",  # "his" after its name
        "Which outage happened on 3 March?",
    ],
)
def test_rules_leave_standalone_questions_alone(question: str) -> None:
    assert _after(question, "How many points did the Broncos score in Super Bowl 50?") == question


def test_rules_follow_a_chain_of_follow_ups() -> None:
    out = _after("Where was he born?", "Who coached the Broncos in 2015?", "How old was he then?")
    assert "Broncos" in out and "2015" in out


def test_rules_read_user_turns_only_and_at_most_max_turns() -> None:
    history = [
        Turn("user", "How do I rotate an API key?"),
        Turn("assistant", "Use the Security console of Acme Cloud [1]."),
    ]
    out = RULES.condense("How long does it take?", history)
    assert "Acme" not in out.question and "API" in out.question
    assert (out.condenser, out.turns, out.fallback) == ("rules", 2, None)
    short = RuleCondenser(max_turns=1).condense("How long does it take?", history)
    assert short.question == "How long does it take?" and short.turns == 1


def test_an_acronym_that_spells_a_function_word_is_a_name() -> None:
    previous = "NAC destabilizes NO in the kidney."
    assert salient(previous)[:2] == ["NAC", "NO"]
    assert "NO" in _after("Which mechanisms are mediated by it?", previous)


def test_salient_phrases_names_first() -> None:
    assert salient("Who lost to the Denver Broncos in Super Bowl 50 in 2016?") == [
        "Denver Broncos",
        "Super Bowl 50",
        "2016",
        "lost",
    ]


# -- the contract -------------------------------------------------------------------------------


class TestRuleCondenser(CondenserContract):
    @pytest.fixture
    def condenser(self) -> Condenser:
        return RuleCondenser()


def _resolving(request: ChatRequest) -> Reply:
    """A model that resolves "it" to the previous user question's API key, else echoes."""
    last = re.search(r"Last question: (.*)", request.messages[-1].content)
    question = last.group(1).strip() if last else ""
    if " it " in f" {question} " and "API key" in request.messages[-1].content:
        return "Standalone question: " + question.replace(" it ", " rotating an API key ")
    return question or "?"


class TestModelCondenser(CondenserContract):
    @pytest.fixture
    def condenser(self) -> Condenser:
        return ModelCondenser(ScriptedChatModel(_resolving), RuleCondenser())


class TestModelCondenserOffline(CondenserContract):
    @pytest.fixture
    def condenser(self) -> Condenser:  # generation.condense.mode: model
        return ModelCondenser(ScriptedChatModel(_resolving), RuleCondenser(), rules_offline=False)


# -- the model condenser ------------------------------------------------------------------------

HISTORY = (Turn("user", "How do I rotate an API key?"), Turn("assistant", "From the console."))


def test_model_condenser_asks_the_model_with_the_conversation() -> None:
    model = ScriptedChatModel(("How long does rotating an API key take?",))
    condenser = ModelCondenser(model, RuleCondenser(), max_tokens=40, timeout_s=3)
    out = condenser.condense("How long does it take?", HISTORY, tenant="team-a")
    assert out.question == "How long does rotating an API key take?"
    assert (out.condenser, out.fallback, out.model, out.turns) == ("model", None, "scripted", 2)
    assert out.usage.total_tokens > 0
    (request,) = model.requests
    assert request.max_tokens == 40 and request.timeout_s == 3 and request.tenant == "team-a"
    prompt = request.messages[-1].content
    assert (
        "User: How do I rotate an API key?" in prompt and "Assistant: From the console." in prompt
    )
    assert prompt.rstrip().endswith("Standalone question:") and "Last question: How long" in prompt


def test_model_condenser_is_not_called_without_an_earlier_user_turn() -> None:
    model = ScriptedChatModel(("unused",))
    out = ModelCondenser(model, RuleCondenser()).condense("Why?", (Turn("assistant", "Hi"),))
    assert out.question == "Why?" and model.calls == 0


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (ScriptedFailure("timeout"), "MODEL_TIMEOUT"),
        (ScriptedFailure("unavailable"), "MODEL_UNAVAILABLE"),
        (ScriptedFailure("error"), "MODEL_ERROR"),
        ("   \n  ", "CONDENSE_REPLY_INVALID"),  # nothing
        ("antidisestablishment " * 100, "CONDENSE_REPLY_INVALID"),  # runs away: not a question
        # off the conversation: the previous question repeated, an answer, made-up facts
        ("How do I rotate an API key?", "CONDENSE_OFF_TOPIC"),
        ("Key rotation finishes within seconds in the console.", "CONDENSE_OFF_TOPIC"),
        ("How long does it take to renew expired TLS certificates manually?", "CONDENSE_OFF_TOPIC"),
    ],
)
def test_model_condenser_falls_back_to_the_rules(reply: Reply, code: str) -> None:
    model = ScriptedChatModel((reply,))
    out = ModelCondenser(model, RuleCondenser(), check=on_topic).condense(
        "How long does it take?", HISTORY
    )
    assert out.question == "How long does it take (API; rotate; key)?"
    assert (out.condenser, out.fallback) == ("rules", code)
    assert out.to_dict()["fallback"] == code and out.original == "How long does it take?"


@pytest.mark.parametrize(
    ("rewrite", "question", "history", "kept"),
    [
        ("How long does rotating an API key take?", "How long does it take?", HISTORY, True),
        ("Why?", "Why?", HISTORY, True),  # no content word to judge by
        ("How often should API keys be rotated?", "Why?", HISTORY, True),
        (
            "Wie lange dauert es, einen API-Schlüssel zu rotieren?",
            "Und wie lange dauert das?",
            (Turn("user", "Wie rotiere ich einen API-Schlüssel?"),),
            True,
        ),
        (
            "How many points did the Panthers score in Super Bowl 50?",
            "What about the Panthers?",
            (Turn("user", "How many points did the Broncos score in Super Bowl 50?"),),
            True,
        ),
        (
            "How many points did the Broncos score in Super Bowl 50?",  # the question dropped
            "What about the Panthers?",
            (Turn("user", "How many points did the Broncos score in Super Bowl 50?"),),
            False,
        ),
        (  # keeps one word of five: the previous question with the question's year
            "In what year did the Amazon have its worst drought?",
            "How many tons of carbon are absorbed by it in a typical year?",
            (Turn("user", "In what year did the Amazon have its worst drought?"),),
            False,
        ),
        # the words may come from an assistant turn
        ("How long does a console rotation take?", "How long does it take?", HISTORY, True),
    ],
)
def test_on_topic_keeps_the_question_and_the_conversations_words(
    rewrite: str, question: str, history: tuple[Turn, ...], kept: bool
) -> None:
    assert on_topic(rewrite, question, history) is kept


def test_without_a_check_any_well_formed_rewrite_stands() -> None:
    reply = "How do I rotate an API key?"  # off the conversation, but nobody checks
    out = ModelCondenser(ScriptedChatModel((reply,)), RuleCondenser()).condense(
        "How long does it take?", HISTORY
    )
    assert (out.question, out.condenser, out.fallback) == (reply, "model", None)


def test_standalone_takes_the_first_line_without_label_or_quotes() -> None:
    assert standalone('Standalone question: "When was it built?"\nBecause...', "x") == (
        "When was it built?"
    )
    assert standalone("\n\n", "x") is None


def test_condense_prompt_is_checked() -> None:
    prompt = load_condense_prompt()
    assert prompt.version == "condense_v1" and "{history}" in prompt.user
    with pytest.raises(TemplateError):
        load_condense_prompt("answer_v3")  # an answer template is not a condense prompt
    with pytest.raises(TemplateError):
        load_condense_prompt("../answer_v3")

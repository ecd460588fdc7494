"""The condenser contract: what every ``Condenser`` (``generation/condense.py``) must do — the
rules, and the model condenser over any chat model (the scripted fake in tests).

* No earlier user turn (no history, or assistant turns only): the question comes back
  character for character, ``original`` equal to it, nothing rewritten.
* A follow-up with a pronoun gets what it points to from the previous user turn: "How long does
  it take?" after "How do I rotate an API key?" says "API" and "key".
* A follow-up that already stands on its own keeps its own words.
* Whatever it is given (blank turns, odd characters, a long history), it returns a ``Condensed``
  and never raises: ``original`` is the question given, ``question`` non-empty for a non-empty
  one, ``turns`` at most the turns given, ``condenser`` is ``rules`` or ``model``, and
  ``to_dict`` holds both questions as JSON.
* The same conversation condenses the same way twice; ``offline()`` is a condenser too, and
  offline twice is offline once.

A backend subclasses ``CondenserContract`` as ``Test...`` and overrides the ``condenser``
fixture::

    class TestRuleCondenser(CondenserContract):
        @pytest.fixture
        def condenser(self) -> Condenser:
            return RuleCondenser()

A model condenser's fixture gives it a model that resolves the pronoun (a scripted reply).
Needs pytest (the ``dev`` extra).
"""

from __future__ import annotations

import json
import re

import pytest

from ragkeel.generation.condense import Condensed, Condenser, Turn

FIRST = "How do I rotate an API key?"
FOLLOW_UP = "How long does it take?"
STANDALONE = "Which outage happened on 3 March?"
ODD = [
    Turn("user", ""),
    Turn("assistant", "   "),
    Turn("user", "Ünïcödé → 日本語 (╯°□°)╯ [1] {question} {history}"),
    Turn("assistant", "Sources:\n[1] keys.md"),
]


class CondenserContract:
    @pytest.fixture
    def condenser(self) -> Condenser:
        raise NotImplementedError("override the condenser fixture: build the backend under test")

    def test_no_earlier_user_turn_keeps_the_question(self, condenser: Condenser) -> None:
        for history in ((), (Turn("assistant", "Hello! Ask me about API keys."),)):
            out = condenser.condense(FOLLOW_UP, history)
            assert out.question == FOLLOW_UP and out.original == FOLLOW_UP
            assert not out.changed and out.fallback is None

    def test_a_pronoun_gets_what_it_points_to(self, condenser: Condenser) -> None:
        history = (Turn("user", FIRST), Turn("assistant", "Rotate it from the console [1]."))
        out = condenser.condense(FOLLOW_UP, history)
        assert out.original == FOLLOW_UP and out.changed
        assert {"api", "key"} <= set(re.findall(r"\w+", out.question.lower())), out.question
        assert out.turns == 2

    def test_a_standalone_follow_up_keeps_its_words(self, condenser: Condenser) -> None:
        out = condenser.condense(STANDALONE, (Turn("user", FIRST),))
        assert "3 march" in out.question.lower() and "outage" in out.question.lower()

    def test_odd_input_never_raises(self, condenser: Condenser) -> None:
        long_history = tuple(Turn("user", f"question {i} about keys?") for i in range(200))
        for question, history in (
            ("Why?", ODD),
            ("and what about it?", long_history),
            ("?", (Turn("user", "?"),)),
            ("x" * 4000, (Turn("user", "y" * 100_000),)),
        ):
            out = condenser.condense(question, history)
            assert isinstance(out, Condensed) and out.original == question
            assert out.question.strip() and out.turns <= len(history)
            assert out.condenser in ("rules", "model")
            record = json.loads(json.dumps(out.to_dict()))
            assert record["original"] == question and record["question"] == out.question

    def test_deterministic(self, condenser: Condenser) -> None:
        history = (Turn("user", FIRST),)
        first = condenser.condense(FOLLOW_UP, history)
        again = condenser.condense(FOLLOW_UP, history)
        assert (first.question, first.condenser) == (again.question, again.condenser)

    def test_offline_is_a_condenser(self, condenser: Condenser) -> None:
        offline = condenser.offline()
        assert offline.offline() is offline
        out = offline.condense(FOLLOW_UP, (Turn("user", FIRST),))
        assert out.original == FOLLOW_UP and out.question.strip()

"""Multi-turn questions (issue 15): the earlier turns of a conversation and its last question
condensed into one standalone question, which retrieval and the answer prompt then use.

"How long does that take?" after "How do I rotate an API key?" is asked as one question that
names what "that" is. Two ``Condenser``s:

- ``RuleCondenser`` (``condense_rules.py``): no model; resolves pronouns and ellipsis from the
  previous user turns (documented there). The default when no model answers (``generation.
  provider: none``, extractive mode) and every model condenser's fallback.
- ``ModelCondenser``: a short versioned prompt (``prompts/condense/<version>.yaml``) sent through
  the gateway on its cheap route (``GatewayStack.cheap``: the cheap local tier or the cheap
  deployments when the router has them, else the main model), with few output tokens and its own
  timeout. Any failure — a model error, a timeout, a busy local model, an empty or runaway
  reply, or a rewrite off the conversation (``condense_rules.on_topic``, passed in as its
  ``check``: it drops most words of the question, or most of its words were never said — an
  answer or made-up facts; ``CONDENSE_OFF_TOPIC``) — falls back to the rules: condensation
  never fails a question.

A condenser reads at most ``max_turns`` earlier turns (user and assistant), each cut to
``max_turn_chars``. ``Condensed`` says what happened: the original last message, the standalone
question, which condenser produced it (``rules``/``model``), the model condenser's failure code
when it fell back, the turns read, the time, the model call's usage and cost. The answer flow
keeps it on the ``Answer`` (``Answer.condensed``), and the trace records it
(``generation/tracing.py``: ``gateway["condense"]`` and the ``ragkeel.condense.*`` attributes).

A question with no earlier user turn is never condensed: ``Answerer`` does not call a condenser
for it (no model call, no added time). The contract every condenser passes:
``ragkeel.testing.contracts.condenser``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, Protocol

from ragkeel.gateway.base import ChatMessage, ChatModel, ChatRequest, Usage
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.generation.templates import read_prompt_file

logger = logging.getLogger("ragkeel.generation")

DEFAULT_CONDENSE_PROMPT = "condense_v1"
DEFAULT_MAX_TURNS = 6  # earlier turns read (user and assistant), the latest ones
DEFAULT_MAX_TURN_CHARS = 600  # of each turn shown to the model (an answer is cut, not a question)
DEFAULT_MAX_TOKENS = 96  # the model's standalone question
DEFAULT_TIMEOUT_S = 20.0
CondenserName = Literal["rules", "model"]
Role = Literal["user", "assistant"]

_PLACEHOLDER = re.compile(r"\{(history|question)\}")
_LABEL = re.compile(
    r"^\s*(?:standalone question|rewritten question|question|eigenständige frage|frage)\s*:\s*",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier message of a conversation (system messages are not turns)."""

    role: Role
    text: str


RewriteCheck = Callable[[str, str, Sequence[Turn]], bool]  # (rewrite, question, history)


@dataclass(frozen=True, slots=True)
class Condensed:
    """The standalone ``question`` made of ``original`` (the last user message) and the
    ``turns`` earlier turns read; ``condenser``: which produced it; ``fallback``: the model
    condenser's failure code when the rules stood in for it."""

    original: str
    question: str
    condenser: CondenserName
    turns: int
    fallback: str | None = None
    ms: float = 0.0
    model: str | None = None  # the model condenser's model (the deployment that answered)
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0

    @property
    def changed(self) -> bool:
        return self.question != self.original

    def to_dict(self) -> dict[str, object]:
        """The trace's record (``gateway["condense"]``): the two questions and the facts."""
        out: dict[str, object] = {
            "original": self.original,
            "question": self.question,
            "condenser": self.condenser,
            "changed": self.changed,
            "turns": self.turns,
            "ms": round(self.ms, 3),
        }
        if self.fallback is not None:
            out["fallback"] = self.fallback
        if self.model is not None or self.usage.total_tokens or self.cost:
            out |= {"model": self.model, "tokens": self.usage.total_tokens, "cost": self.cost}
        return out


class Condenser(Protocol):
    """Condenses a conversation's last question; never raises for any text it is given."""

    @property
    def name(self) -> CondenserName: ...

    def condense(
        self, question: str, history: Sequence[Turn], *, tenant: str | None = None
    ) -> Condensed:
        """``question`` made standalone from ``history`` (oldest first); ``tenant`` keys the
        gateway's limits and ledger for a model call."""
        ...

    def offline(self) -> Condenser:
        """The condenser to use where no model may be called (an extractive answer)."""
        ...


def recent(history: Sequence[Turn], max_turns: int) -> tuple[Turn, ...]:
    """The last ``max_turns`` turns of ``history`` that have text."""
    turns = [t for t in history if t.text.strip()]
    return tuple(turns[-max_turns:]) if max_turns > 0 else ()


@dataclass(frozen=True, slots=True)
class CondensePrompt:
    version: str
    system: str
    user: str

    def render(
        self, history: Sequence[Turn], question: str, max_chars: int
    ) -> tuple[ChatMessage, ...]:
        lines = [f"{t.role.capitalize()}: {_cut(t.text, max_chars)}" for t in history]
        values = {"history": "\n".join(lines), "question": question}

        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

        return (ChatMessage("system", fill(self.system)), ChatMessage("user", fill(self.user)))


@lru_cache(maxsize=8)
def load_condense_prompt(version: str = DEFAULT_CONDENSE_PROMPT) -> CondensePrompt:
    """The prompt ``prompts/condense/<version>.yaml``; ``TemplateError`` if missing or
    malformed (``templates.read_prompt_file``: the user text needs ``{history}`` and
    ``{question}``)."""
    found = read_prompt_file(
        "ragkeel.generation",
        ("prompts", "condense"),
        version,
        what="condense prompt",
        placeholders=("history", "question"),
        hint="see generation/prompts/condense/",
    )
    return CondensePrompt(version, found.system, found.user)


class ModelCondenser:
    """Asks ``model`` (the gateway's cheap route) for the standalone question; ``fallback``
    (the rules) answers whenever that fails. ``rules_offline``: an extractive answer uses the
    rules (``generation.condense.mode: auto``) or still asks the model (``mode: model``).
    ``check``: whether a rewrite may stand in for the question (the container passes
    ``condense_rules.on_topic``; None accepts every well-formed rewrite)."""

    def __init__(
        self,
        model: ChatModel,
        fallback: Condenser,
        *,
        prompt: str = DEFAULT_CONDENSE_PROMPT,
        max_turns: int = DEFAULT_MAX_TURNS,
        max_turn_chars: int = DEFAULT_MAX_TURN_CHARS,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        rules_offline: bool = True,
        check: RewriteCheck | None = None,
    ) -> None:
        self.model = model
        self.fallback = fallback
        self.prompt = load_condense_prompt(prompt)  # a bad version fails at start-up
        self.max_turns = max_turns
        self.max_turn_chars = max_turn_chars
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.rules_offline = rules_offline
        self.check = check

    @property
    def name(self) -> CondenserName:
        return "model"

    def offline(self) -> Condenser:
        return self.fallback if self.rules_offline else self

    def condense(
        self, question: str, history: Sequence[Turn], *, tenant: str | None = None
    ) -> Condensed:
        started = time.perf_counter()
        turns = recent(history, self.max_turns)
        if not any(t.role == "user" for t in turns):
            return Condensed(question, question, "model", len(turns))
        log = CallLog()
        try:
            messages = self.prompt.render(turns, question, self.max_turn_chars)
            request = ChatRequest(
                messages, max_tokens=self.max_tokens, timeout_s=self.timeout_s, tenant=tenant
            )
            with recording(log):
                reply = self.model.complete(request)
            text = standalone(reply.text, question)
        except Exception as exc:  # any failure: the rules answer (never an error); traced
            code = str(getattr(exc, "code", "") or type(exc).__name__)
            logger.warning("condensing with the model failed (%s); the rules stand in", code)
            return self._fallback(question, history, tenant, code, started, log)
        if text is None:
            return self._fallback(question, history, tenant, "CONDENSE_REPLY_INVALID", started, log)
        if self.check is not None and not self.check(text, question, turns):
            logger.info("the model's rewrite %r is off the conversation; the rules stand in", text)
            return self._fallback(question, history, tenant, "CONDENSE_OFF_TOPIC", started, log)
        ms = (time.perf_counter() - started) * 1000
        return Condensed(
            question, text, "model", len(turns), None, ms, reply.model, reply.usage, log.cost
        )

    def _fallback(
        self,
        question: str,
        history: Sequence[Turn],
        tenant: str | None,
        code: str,
        started: float,
        log: CallLog,
    ) -> Condensed:
        ruled = self.fallback.condense(question, history, tenant=tenant)
        ms = (time.perf_counter() - started) * 1000
        return Condensed(
            ruled.original,
            ruled.question,
            ruled.condenser,
            ruled.turns,
            code,
            ms,
            log.served_by,
            log.usage,
            log.cost,
        )


def standalone(reply: str, question: str) -> str | None:
    """The standalone question in a model's ``reply``: its first non-empty line, without a
    label ("Standalone question:") or quotes; None when there is none or it runs away (longer
    than four times the question plus 300 characters: an answer, not a question)."""
    for line in reply.strip().splitlines():
        text = _LABEL.sub("", line).strip().strip("\"'“”„`").strip()
        if text:
            return text if len(text) <= 4 * len(question) + 300 else None
    return None


def _cut(text: str, max_chars: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"

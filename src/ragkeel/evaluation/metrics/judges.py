"""``LLMJudge``: an optional LLM grade of an answer through any ``ChatModel`` (the configured
one, or the scripted fake in tests), with a versioned prompt and repeated runs.

The prompt is data, ``prompts/<version>.yaml`` (like ``generation/templates.py``): a ``version``
equal to the file name, a ``system`` and a ``user`` text with the placeholders ``{question}``,
``{answer}``, ``{sources}`` and ``{references}``, substituted in one pass. The judge must reply
with one JSON object ``{"score": <0..1>, "reason": "..."}`` (a fenced ```json block is accepted).

The judge is asked ``repeats`` times at ``temperature`` > 0, so its own noise shows:
``JudgeVerdict`` carries every raw reply, the parsed scores, their mean and spread (sample
standard deviation; 0.0 for one score) and a verdict:

- ``pass``: every parsed score is at least ``threshold``; ``fail``: every one is below it;
- ``unstable``: the scores straddle the threshold (min < threshold <= max). It is reported as
  such, never rounded to pass or fail by the mean;
- ``invalid``: no reply parsed. A reply that does not parse (not JSON, no numeric ``score``,
  a score outside [0, 1]) is counted in ``unparseable`` and left out of the scores; it is
  never read as 0.

Model failures (``ChatModelError``) propagate: a judge that could not be asked has no verdict.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from ragkeel.evaluation.metrics.answers import parse_json_reply
from ragkeel.gateway.base import ChatMessage, ChatModel, ChatRequest
from ragkeel.generation.answer import Answer
from ragkeel.generation.context import pack_context
from ragkeel.generation.templates import read_prompt_file
from ragkeel.tokens import RegexTokenCounter

DEFAULT_JUDGE_PROMPT = "judge_v1"
JUDGE_MAX_TOKENS = 200
Verdict = Literal["pass", "fail", "unstable", "invalid"]

_PLACEHOLDER = re.compile(r"\{(question|answer|sources|references)\}")
_NO_REFERENCES = "(none given: judge the answer against the sources only)"
_UNLIMITED = 10**9


@dataclass(frozen=True, slots=True)
class JudgePrompt:
    version: str
    system: str
    user: str

    def render(
        self, question: str, answer: str, sources: Sequence[str], references: Sequence[str]
    ) -> tuple[ChatMessage, ...]:
        values = {
            "question": question,
            "answer": answer,
            "sources": "\n\n".join(f"[{i}] {s}" for i, s in enumerate(sources, 1)) or "(none)",
            "references": "\n".join(f"- {r}" for r in references) or _NO_REFERENCES,
        }

        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

        return (ChatMessage("system", fill(self.system)), ChatMessage("user", fill(self.user)))


@lru_cache(maxsize=8)
def load_judge_prompt(version: str = DEFAULT_JUDGE_PROMPT) -> JudgePrompt:
    """The prompt ``prompts/<version>.yaml``; ``TemplateError`` if missing or malformed
    (``generation/templates.read_prompt_file``)."""
    found = read_prompt_file(
        "ragkeel.evaluation.metrics",
        ("prompts",),
        version,
        what="judge prompt",
        placeholders=("question", "answer", "sources"),
        hint="see evaluation/metrics/prompts/",
    )
    return JudgePrompt(version, found.system, found.user)


@dataclass(frozen=True, slots=True)
class JudgeVerdict:
    scores: tuple[float, ...]  # the replies that parsed, in order
    mean: float | None  # None when no reply parsed
    spread: float | None  # sample standard deviation of ``scores``; 0.0 for one score
    verdict: Verdict
    prompt_version: str
    raw: tuple[str, ...]  # every reply, in order, parsed or not
    reasons: tuple[str, ...] = ()
    unparseable: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": list(self.scores),
            "mean": self.mean,
            "spread": self.spread,
            "verdict": self.verdict,
            "prompt_version": self.prompt_version,
            "unparseable": self.unparseable,
            "reasons": list(self.reasons),
            "raw": list(self.raw),
        }


class LLMJudge:
    def __init__(
        self,
        model: ChatModel,
        *,
        prompt_version: str = DEFAULT_JUDGE_PROMPT,
        repeats: int = 3,
        threshold: float = 0.5,
        temperature: float = 0.7,
    ) -> None:
        if repeats < 1:
            raise ValueError(f"repeats must be at least 1, got {repeats}")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if temperature < 0.0:
            raise ValueError(f"temperature must not be negative, got {temperature}")
        self.model = model
        self.prompt = load_judge_prompt(prompt_version)
        self.repeats = repeats
        self.threshold = threshold
        self.temperature = temperature

    def judge(
        self,
        question: str,
        answer_text: str,
        sources: Sequence[str],
        references: Sequence[str] = (),
    ) -> JudgeVerdict:
        """Ask the judge ``repeats`` times. ``sources`` are numbered from 1 in the prompt, so
        give them in the numbering the answer cites (``answer_sources``)."""
        messages = self.prompt.render(question, answer_text, sources, references)
        request = ChatRequest(
            messages,
            max_tokens=JUDGE_MAX_TOKENS,
            temperature=self.temperature,
            metadata={"purpose": "judge", "prompt_version": self.prompt.version},
        )
        raw = tuple(self.model.complete(request).text for _ in range(self.repeats))
        parsed = [p for p in (parse_judge_reply(r) for r in raw) if p is not None]
        scores = tuple(score for score, _ in parsed)
        return JudgeVerdict(
            scores=scores,
            mean=statistics.fmean(scores) if scores else None,
            spread=(statistics.stdev(scores) if len(scores) > 1 else 0.0) if scores else None,
            verdict=verdict_of(scores, self.threshold),
            prompt_version=self.prompt.version,
            raw=raw,
            reasons=tuple(reason for _, reason in parsed),
            unparseable=len(raw) - len(parsed),
        )


def parse_judge_reply(reply: str) -> tuple[float, str] | None:
    """``(score, reason)`` from a judge reply, or ``None`` when it is not a JSON object with a
    numeric ``score`` in [0, 1]."""
    try:
        value = parse_json_reply(reply)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    score, reason = value.get("score"), value.get("reason", "")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        return None
    return float(score), reason if isinstance(reason, str) else str(reason)


def verdict_of(scores: Sequence[float], threshold: float) -> Verdict:
    """``pass``/``fail`` when all scores are on one side of ``threshold`` (a score equal to
    it passes), ``unstable`` when they straddle it, ``invalid`` when there are none."""
    if not scores:
        return "invalid"
    if min(scores) >= threshold:
        return "pass"
    if max(scores) < threshold:
        return "fail"
    return "unstable"


def answer_sources(answer: Answer) -> list[str]:
    """The answer's sources numbered as it cites them: its hits packed again (same order and
    duplicate removal as at answer time) without a token budget, each as ``label`` + text."""
    packed = pack_context(answer.hits, RegexTokenCounter().count, _UNLIMITED)
    return [f"{s.label}\n{s.text}" for s in packed.sources]

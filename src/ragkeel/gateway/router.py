"""Routing: send each request to the cheap or the strong model, from what the question looks
like and how confident retrieval was (``ChatRequest.hints``).

The decision is a pure function, ``route(hints, rules) -> RouteDecision``, so the evaluation
harness and the benchmarks can replay it over a workload without calling a model;
``RouterChatModel`` is the ``ChatModel`` wrapper that applies it and writes the decision and its
reason to the call log (policy ``"router"``).

The rules, in order:

1. No hints at all -> ``rules.default``.
2. Reasons for the strong model, all collected (the reason lists every one that applies):
   a multi-part question (more than ``max_question_marks`` question marks, or one of
   ``multi_part_markers``), a long question (``strong_min_question_tokens`` or more), low
   retrieval confidence (``top_score < cheap_min_top_score``) or an ambiguous ranking
   (``margin < cheap_min_margin``). Any of them -> strong.
3. Otherwise, when the question or a score is missing, nothing proves the question easy ->
   ``rules.default``.
4. Otherwise it is a confident single-fact question -> cheap.

``top_score`` is the top dense cosine, ``margin`` the top minus the second fused score (see
``RoutingHints``). Question length is counted with ``RegexTokenCounter`` (words and
punctuation marks): the same count whichever models sit behind the router. Markers are matched
as case-insensitive substrings of the question with its whitespace collapsed to single spaces
and a space added at both ends, so ``" and also "`` or ``"1. "`` match at the start or end too.

Where it sits: the router chooses between two full chains (each with its own retry, breaker and
fallback), so it wraps them rather than being wrapped by them; errors from the chosen model pass
through unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from ragkeel.gateway.base import ChatModel, ChatRequest, ChatResponse, ChatStream, RoutingHints
from ragkeel.gateway.calllog import current_log
from ragkeel.tokens import RegexTokenCounter

Choice = Literal["cheap", "strong"]

DEFAULT_MULTI_PART_MARKERS: tuple[str, ...] = (
    "1. ",
    "1) ",
    " and also ",
    "compare",
    "versus",
    " vs ",
    " vs. ",
    "difference between",
    "differences between",
    ";",
)
_COUNTER = RegexTokenCounter()


@dataclass(frozen=True, slots=True)
class RoutingRules:
    """Thresholds and markers for ``route``; filled from settings by the container."""

    cheap_min_top_score: float = 0.55
    cheap_min_margin: float = 0.05
    strong_min_question_tokens: int = 40
    max_question_marks: int = 1  # more question marks than this: several questions in one
    multi_part_markers: tuple[str, ...] = DEFAULT_MULTI_PART_MARKERS
    default: Choice = "strong"  # when the hints cannot show the question is easy

    def __post_init__(self) -> None:
        if self.default not in ("cheap", "strong"):
            raise ValueError(f"default must be 'cheap' or 'strong', got {self.default!r}")
        if self.strong_min_question_tokens < 1:
            raise ValueError("strong_min_question_tokens must be at least 1")
        if self.max_question_marks < 1:
            raise ValueError("max_question_marks must be at least 1")
        if not all(marker.strip() for marker in self.multi_part_markers):
            raise ValueError("multi_part_markers must not contain blank markers")


@dataclass(frozen=True, slots=True)
class RouteFeatures:
    """What ``route`` looked at; ``None`` where the hints did not say."""

    question_tokens: int | None = None
    question_marks: int | None = None
    markers: tuple[str, ...] = ()  # the multi-part markers found in the question
    top_score: float | None = None
    margin: float | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RouteDecision:
    choice: Choice
    reason: str  # starts with the choice: "cheap: ...", "strong: ...", "strong (default): ..."
    features: RouteFeatures


def route(hints: RoutingHints | None, rules: RoutingRules) -> RouteDecision:
    """Pick the cheap or the strong model for a request with these hints (pure, no I/O)."""
    if hints is None:
        return _default(rules, "no routing hints", RouteFeatures())
    features = _features(hints, rules)
    strong = _strong_reasons(features, rules)
    if strong:
        return RouteDecision("strong", "strong: " + "; ".join(strong), features)
    missing = [
        name
        for name, value in (
            ("question", features.question_tokens),
            ("top_score", features.top_score),
            ("margin", features.margin),
        )
        if value is None
    ]
    if missing:
        return _default(rules, "no " + ", ".join(missing) + " in the hints", features)
    return RouteDecision(
        "cheap",
        f"cheap: top_score {features.top_score:.4g} >= {rules.cheap_min_top_score:g}, "
        f"margin {features.margin:.4g} >= {rules.cheap_min_margin:g}, "
        f"single question of {features.question_tokens} tokens",
        features,
    )


def _features(hints: RoutingHints, rules: RoutingRules) -> RouteFeatures:
    question = hints.question.strip()
    if not question:
        return RouteFeatures(top_score=hints.top_score, margin=hints.margin)
    padded = " " + " ".join(question.lower().split()) + " "
    markers = tuple(m for m in rules.multi_part_markers if m.lower() in padded)
    return RouteFeatures(
        question_tokens=_COUNTER.count(question),
        question_marks=question.count("?"),
        markers=markers,
        top_score=hints.top_score,
        margin=hints.margin,
    )


def _strong_reasons(features: RouteFeatures, rules: RoutingRules) -> list[str]:
    reasons: list[str] = []
    marks = features.question_marks or 0
    if marks > rules.max_question_marks:
        reasons.append(f"multi-part question ({marks} question marks)")
    if features.markers:
        quoted = ", ".join(repr(m.strip()) for m in features.markers)
        reasons.append(f"multi-part question (markers {quoted})")
    tokens = features.question_tokens
    if tokens is not None and tokens >= rules.strong_min_question_tokens:
        reasons.append(f"long question of {tokens} tokens >= {rules.strong_min_question_tokens}")
    if features.top_score is not None and features.top_score < rules.cheap_min_top_score:
        reasons.append(
            f"low confidence: top_score {features.top_score:.4g} < {rules.cheap_min_top_score:g}"
        )
    if features.margin is not None and features.margin < rules.cheap_min_margin:
        reasons.append(f"low margin: margin {features.margin:.4g} < {rules.cheap_min_margin:g}")
    return reasons


def _default(rules: RoutingRules, why: str, features: RouteFeatures) -> RouteDecision:
    return RouteDecision(rules.default, f"{rules.default} (default): {why}", features)


class RouterChatModel:
    """``ChatModel`` that sends each request to ``cheap`` or ``strong`` as ``route`` decides and
    logs the decision (``current_log().decide("router", reason)``). ``count_tokens`` is the strong
    model's: budgets estimated with it are on the safe side of the two."""

    def __init__(
        self,
        cheap: ChatModel,
        strong: ChatModel,
        rules: RoutingRules,
        *,
        name: str | None = None,
    ) -> None:
        self.cheap = cheap
        self.strong = strong
        self.rules = rules
        self._name = name or f"router({cheap.name}|{strong.name})"

    @property
    def name(self) -> str:
        return self._name

    def count_tokens(self, text: str) -> int:
        return self.strong.count_tokens(text)

    def choose(self, request: ChatRequest) -> ChatModel:
        """Decide, log the decision in the call log, and return the chosen model."""
        decision = route(request.hints, self.rules)
        if (log := current_log()) is not None:
            log.decide("router", decision.reason)
        return self.cheap if decision.choice == "cheap" else self.strong

    def complete(self, request: ChatRequest) -> ChatResponse:
        return self.choose(request).complete(request)

    def stream(self, request: ChatRequest) -> ChatStream:
        """Decides now; the chosen model's stream does the rest."""
        return self.choose(request).stream(request)

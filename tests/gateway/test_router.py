"""Routing decisions and their reasons, and ``RouterChatModel`` over two scripted models."""

from __future__ import annotations

import pytest

from ragkeel.errors import ModelUnavailableError
from ragkeel.gateway.base import ChatMessage, ChatRequest, ChatResponse, ChatStream, RoutingHints
from ragkeel.gateway.calllog import CallLog, Decision, recording
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.gateway.router import RouteFeatures, RouterChatModel, RoutingRules, route

RULES = RoutingRules()
SINGLE = "What year was the Eiffel Tower completed?"  # 8 tokens with the "?"


def _hints(
    question: str = SINGLE, top: float | None = 0.71, margin: float | None = 0.12
) -> RoutingHints:
    return RoutingHints(question=question, top_score=top, margin=margin)


# -- route(): the pure decision -----------------------------------------------------------


def test_confident_single_fact_question_goes_cheap() -> None:
    decision = route(_hints(), RULES)
    assert decision.choice == "cheap"
    assert decision.reason == (
        "cheap: top_score 0.71 >= 0.55, margin 0.12 >= 0.05, single question of 8 tokens"
    )
    assert decision.features == RouteFeatures(
        question_tokens=8, question_marks=1, markers=(), top_score=0.71, margin=0.12
    )


def test_thresholds_are_inclusive_for_cheap() -> None:
    assert route(_hints(top=0.55, margin=0.05), RULES).choice == "cheap"
    assert route(_hints(top=0.5499, margin=0.05), RULES).choice == "strong"
    assert route(_hints(top=0.55, margin=0.0499), RULES).choice == "strong"


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("Compare BM25 and dense retrieval.", "markers 'compare'"),
        ("What is the difference between HNSW and IVF?", "markers 'difference between'"),
        ("Who wrote Hamlet and also who wrote Faust", "markers 'and also'"),
        ("Is Python faster vs Go", "markers 'vs'"),
        ("List the causes; then the cures", "markers ';'"),
        ("1. Who founded Rome 2. When", "markers '1.'"),
        ("Who founded Rome? When did it fall?", "2 question marks"),
    ],
)
def test_multi_part_questions_go_strong(question: str, reason: str) -> None:
    decision = route(_hints(question), RULES)
    assert decision.choice == "strong"
    assert decision.reason.startswith("strong: multi-part question (")
    assert reason in decision.reason


def test_markers_are_not_found_inside_numbers_or_words() -> None:
    for question in (
        "What changed in version 1.5?",
        "Is Versailles near Paris?",
        "Which hvs codec?",
    ):
        decision = route(_hints(question), RULES)
        assert decision.choice == "cheap", decision.reason
        assert decision.features.markers == ()


def test_long_question_goes_strong() -> None:
    question = "Please explain " + " ".join(["retrieval"] * 40) + "?"
    decision = route(_hints(question), RULES)
    assert decision.choice == "strong"
    assert decision.reason == "strong: long question of 43 tokens >= 40"
    short = "Please explain " + " ".join(["retrieval"] * 36) + "?"
    assert route(_hints(short), RULES).choice == "cheap"  # 39 tokens


def test_low_confidence_and_low_margin_go_strong() -> None:
    assert route(_hints(top=0.41), RULES).reason == "strong: low confidence: top_score 0.41 < 0.55"
    assert route(_hints(margin=0.02), RULES).reason == "strong: low margin: margin 0.02 < 0.05"


def test_every_reason_for_strong_is_listed() -> None:
    decision = route(_hints("Compare X versus Y?", top=0.3, margin=0.01), RULES)
    assert decision.reason == (
        "strong: multi-part question (markers 'compare', 'versus'); "
        "low confidence: top_score 0.3 < 0.55; low margin: margin 0.01 < 0.05"
    )


def test_missing_hints_take_the_default() -> None:
    assert route(None, RULES).reason == "strong (default): no routing hints"
    assert route(None, RoutingRules(default="cheap")).choice == "cheap"
    no_scores = route(_hints(top=None, margin=None), RULES)
    assert no_scores.reason == "strong (default): no top_score, margin in the hints"
    assert no_scores.features.question_tokens == 8
    no_question = route(_hints("  "), RoutingRules(default="cheap"))
    assert no_question.reason == "cheap (default): no question in the hints"


def test_missing_scores_do_not_hide_a_strong_reason() -> None:
    decision = route(
        _hints("Compare A and B", top=None, margin=None), RoutingRules(default="cheap")
    )
    assert decision.choice == "strong"
    low_score_no_question = route(_hints("", top=0.2), RoutingRules(default="cheap"))
    assert low_score_no_question.choice == "strong"


def test_rules_from_config_change_the_decision() -> None:
    strict = RoutingRules(cheap_min_top_score=0.8, multi_part_markers=("eiffel",))
    decision = route(_hints(), strict)
    assert decision.choice == "strong"
    assert "markers 'eiffel'" in decision.reason and "top_score 0.71 < 0.8" in decision.reason
    lenient = RoutingRules(max_question_marks=2)
    assert route(_hints("Who founded Rome? When?"), lenient).choice == "cheap"
    assert route(_hints(), RULES).features.to_dict()["question_tokens"] == 8


@pytest.mark.parametrize(
    "kwargs",
    [
        {"default": "medium"},
        {"strong_min_question_tokens": 0},
        {"max_question_marks": 0},
        {"multi_part_markers": ("compare", " ")},
    ],
)
def test_rules_are_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RoutingRules(**kwargs)  # type: ignore[arg-type]


# -- RouterChatModel ----------------------------------------------------------------------


@pytest.fixture
def cheap() -> ScriptedChatModel:
    return ScriptedChatModel(["cheap answer."], name="cheap-model")


@pytest.fixture
def strong() -> ScriptedChatModel:
    return ScriptedChatModel(["strong answer."], name="strong-model")


def _request(hints: RoutingHints | None) -> ChatRequest:
    question = hints.question if hints else "?"
    return ChatRequest((ChatMessage("user", question),), hints=hints)


def test_router_sends_and_logs(cheap: ScriptedChatModel, strong: ScriptedChatModel) -> None:
    router = RouterChatModel(cheap, strong, RULES)
    assert router.name == "router(cheap-model|strong-model)"
    log = CallLog()
    with recording(log):
        response = router.complete(_request(_hints()))
    assert (response.text, response.model) == ("cheap answer.", "cheap-model")
    assert (cheap.calls, strong.calls) == (1, 0)
    low = _request(_hints(top=0.2))
    with recording(log):
        assert router.complete(low).model == "strong-model"
    assert (cheap.calls, strong.calls) == (1, 1)
    assert strong.requests[0] is low  # the request is passed on untouched
    assert log.decisions == [
        Decision("router", route(_hints(), RULES).reason),
        Decision("router", "strong: low confidence: top_score 0.2 < 0.55"),
    ]


def test_router_stream(cheap: ScriptedChatModel, strong: ScriptedChatModel) -> None:
    router = RouterChatModel(cheap, strong, RULES, name="routed")
    log = CallLog()
    with recording(log):
        chunks = list(router.stream(_request(None)))
    assert "".join(c.text_delta for c in chunks) == "strong answer."
    assert chunks[-1].finish_reason == "stop"
    assert log.decisions == [Decision("router", "strong (default): no routing hints")]
    assert router.name == "routed"
    cheap_text = "".join(c.text_delta for c in router.stream(_request(_hints())))
    assert cheap_text == "cheap answer."  # without a log the router still routes


def test_router_passes_errors_through(strong: ScriptedChatModel) -> None:
    failing = ScriptedChatModel([ScriptedFailure("unavailable")], name="cheap-model")
    router = RouterChatModel(failing, strong, RULES)
    with pytest.raises(ModelUnavailableError):
        router.complete(_request(_hints()))
    assert strong.calls == 0  # no fallback here: that is the fallback policy's job


class _CharCountingModel:
    """A protocol-conforming model whose tokenizer differs from the scripted one's."""

    def __init__(self) -> None:
        self._inner = ScriptedChatModel(name="chars")

    @property
    def name(self) -> str:
        return self._inner.name

    def complete(self, request: ChatRequest) -> ChatResponse:
        return self._inner.complete(request)

    def stream(self, request: ChatRequest) -> ChatStream:
        return self._inner.stream(request)

    def count_tokens(self, text: str) -> int:
        return len(text)


def test_count_tokens_is_the_strong_models(cheap: ScriptedChatModel) -> None:
    assert RouterChatModel(cheap, _CharCountingModel(), RULES).count_tokens("two words") == 9
    assert RouterChatModel(_CharCountingModel(), cheap, RULES).count_tokens("two words") == 2

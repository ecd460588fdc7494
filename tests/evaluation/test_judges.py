"""The LLM judge against the scripted chat model: stable pass, stable fail, straddling scores,
unparseable replies, the versioned prompt, and failures that propagate."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from answer_fixtures import ON_TOPIC, answer_index, ask

from ragkeel.errors import ModelUnavailableError, TemplateError
from ragkeel.evaluation.metrics.judges import (
    LLMJudge,
    answer_sources,
    load_judge_prompt,
    parse_judge_reply,
    verdict_of,
)
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure

SOURCES = ["API keys\nRotate every API key every ninety days.", "Outage\nIt lasted 95 minutes."]


def _reply(score: object, reason: str = "because") -> str:
    return json.dumps({"score": score, "reason": reason})


def _judge(*replies: str, **kw: float) -> tuple[LLMJudge, ScriptedChatModel]:
    model = ScriptedChatModel(list(replies), name="judge")
    return LLMJudge(model, **kw), model  # type: ignore[arg-type]


def test_stable_pass_with_mean_and_spread() -> None:
    judge, model = _judge(_reply(0.9), _reply(0.8), _reply(1))
    v = judge.judge(ON_TOPIC, "Every ninety days [1].", SOURCES, ["every 90 days"])
    assert v.verdict == "pass" and v.scores == (0.9, 0.8, 1.0)
    assert v.mean == pytest.approx(0.9)
    assert v.spread == pytest.approx(statistics.stdev([0.9, 0.8, 1.0]))
    assert v.prompt_version == "judge_v1" and v.unparseable == 0
    assert v.reasons == ("because",) * 3 and len(v.raw) == 3
    assert model.calls == 3
    assert all(r.temperature == 0.7 for r in model.requests)


def test_stable_fail() -> None:
    judge, _ = _judge(_reply(0.1), _reply(0.2), _reply(0.0))
    v = judge.judge("q", "a", SOURCES)
    assert v.verdict == "fail" and v.mean == pytest.approx(0.1)


@pytest.mark.parametrize(
    "scores",
    [(0.4, 0.6, 0.45), (0.9, 0.9, 0.3)],  # mean below, then above the threshold
)
def test_straddling_scores_are_unstable_not_flipped(scores: tuple[float, ...]) -> None:
    judge, _ = _judge(*(_reply(s) for s in scores))
    v = judge.judge("q", "a", SOURCES)
    assert v.verdict == "unstable"
    assert v.scores == scores


def test_score_equal_to_threshold_passes() -> None:
    assert verdict_of([0.5, 0.5], 0.5) == "pass"
    assert verdict_of([0.49, 0.5], 0.5) == "unstable"
    assert verdict_of([], 0.5) == "invalid"


def test_unparseable_replies_are_recorded_not_zero() -> None:
    judge, _ = _judge("I think it is good.", _reply(0.9), _reply(1.5))
    v = judge.judge("q", "a", SOURCES)
    assert v.unparseable == 2 and v.scores == (0.9,)
    assert v.verdict == "pass" and v.spread == 0.0  # 0 is never invented for the bad replies
    assert v.raw[0] == "I think it is good."
    nothing, _ = _judge("no json here")
    none = nothing.judge("q", "a", SOURCES)
    assert none.verdict == "invalid" and none.mean is None and none.spread is None
    assert none.unparseable == 3 and none.to_dict()["verdict"] == "invalid"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"score": 0.75, "reason": "mostly"}', (0.75, "mostly")),
        ('```json\n{"score": 1, "reason": "fine"}\n```', (1.0, "fine")),
        ('{"score": 0}', (0.0, "")),
        ('{"score": true}', None),
        ('{"score": "0.9"}', None),
        ('{"score": -0.1}', None),
        ("[0.9]", None),
        ('{"score": 0.9} but also prose', None),
    ],
)
def test_parse_judge_reply(reply: str, expected: tuple[float, str] | None) -> None:
    assert parse_judge_reply(reply) == expected


def test_prompt_carries_question_sources_and_references() -> None:
    judge, model = _judge(_reply(1))
    judge.judge("How often?", "Every ninety days [1].", SOURCES, ["every 90 days"])
    system, user = model.requests[0].messages
    assert '{"score"' in system.content
    assert "How often?" in user.content and "Every ninety days [1]." in user.content
    assert "[1] API keys\nRotate every" in user.content and "[2] Outage" in user.content
    assert "- every 90 days" in user.content
    judge.judge("q", "a {sources}", [], [])
    user = model.requests[-1].messages[1]
    assert "a {sources}" in user.content  # answer text is not expanded again
    assert "(none given" in user.content


def test_prompt_versions_and_arguments_are_checked() -> None:
    assert load_judge_prompt("judge_v1").version == "judge_v1"
    with pytest.raises(TemplateError, match="no judge prompt"):
        load_judge_prompt("judge_v999")
    with pytest.raises(TemplateError, match="invalid"):
        load_judge_prompt("../answer_v1")
    model = ScriptedChatModel()
    for bad in ({"repeats": 0}, {"threshold": 0.0}, {"temperature": -1.0}):
        with pytest.raises(ValueError):
            LLMJudge(model, **bad)  # type: ignore[arg-type]


def test_model_failure_propagates() -> None:
    model = ScriptedChatModel([_reply(1), ScriptedFailure("unavailable")])
    with pytest.raises(ModelUnavailableError):
        LLMJudge(model).judge("q", "a", SOURCES)


def test_answer_sources_follow_the_answers_numbering(tmp_path: Path) -> None:
    with answer_index(tmp_path) as retriever:
        answer = ask(retriever, ON_TOPIC, "Rotate every API key every ninety days [1].")
    sources = answer_sources(answer)
    cited = answer.citations[0]
    assert cited.number == 1
    assert cited.snippet.rstrip("…")[:30] in sources[0]

"""Answer metrics. The SQuAD cases are literal expectations of the official v1.1 evaluation
script (``normalize_answer``, ``exact_match_score``, ``f1_score``, max over ground truths),
worked out by hand from its definition; grounding and citations come from real answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from answer_fixtures import OFF_TOPIC, ON_TOPIC, answer_index, ask

from ragkeel.evaluation.cases import EvalCase
from ragkeel.evaluation.metrics.answers import (
    SCORE_KEYS,
    abstention_summary,
    citation_validity,
    contains_reference,
    exact_match,
    exact_match_score,
    f1_score,
    format_compliance,
    format_error,
    grounded_share,
    normalize_answer,
    parse_json_reply,
    schema_problem,
    score_answer,
    token_f1,
)
from ragkeel.generation.answer import Answer
from ragkeel.generation.templates import REFUSAL_PHRASE
from ragkeel.types import Citation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat sat on the mat.", "cat sat on mat"),  # lower, punctuation, articles
        ("  An  apple,\ta day!! ", "apple day"),  # whitespace collapsed
        ("Theater and anthem", "theater and anthem"),  # articles only as whole words
        ("the-end", "theend"),  # punctuation goes first, so no article is left to remove
        ("A.B.C.", "abc"),
        ("1,000 (approx.)", "1000 approx"),
        ("Don't", "dont"),
        ("Ångström’s", "ångström’s"),  # only ASCII punctuation is removed
        ("", ""),
        ("a an the", ""),
    ],
)
def test_normalize_answer_matches_the_official_definition(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


def test_official_exact_match_and_f1_single_reference() -> None:
    assert exact_match_score("Denver Broncos", "denver broncos.") == 1.0
    assert exact_match_score("the Denver Broncos", "Denver Broncos") == 1.0
    assert exact_match_score("Denver", "Denver Broncos") == 0.0
    assert f1_score("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert f1_score("cat cat cat", "cat") == pytest.approx(0.5)  # counts clip: P 1/3, R 1
    assert f1_score("Denver", "Denver Broncos") == pytest.approx(2 / 3)
    assert f1_score("Broncos", "Panthers") == 0.0


def test_empty_prediction_and_article_only_answers_follow_v1_1() -> None:
    assert f1_score("", "Denver Broncos") == 0.0
    assert exact_match_score("", "Denver Broncos") == 0.0
    # both normalise to nothing: EM says equal, v1.1's F1 has no common token and says 0
    assert exact_match_score("the", "a") == 1.0
    assert f1_score("the", "a") == 0.0


def test_multiple_references_take_the_maximum() -> None:
    refs = ["Santa Clara", "Levi's Stadium"]
    pred = "in the Santa Clara stadium"
    assert exact_match(pred, refs) == 0.0
    assert token_f1(pred, refs) == pytest.approx(2 / 3)  # vs Santa Clara; Levi's gives 1/3
    assert exact_match("Carolina Panthers", ["Denver Broncos", "the Carolina Panthers"]) == 1.0
    assert token_f1("Carolina Panthers", ["Denver Broncos", "the Carolina Panthers"]) == 1.0


def test_citation_markers_are_stripped_before_scoring() -> None:
    assert exact_match("The Broncos won [1].", ["Broncos won"]) == 1.0
    assert token_f1("Broncos won [1][2]", ["Broncos won"]) == 1.0
    assert f1_score("Broncos won [1]", "Broncos won") < 1.0  # the raw official function


def test_contains_reference_is_whole_token_span_containment() -> None:
    assert contains_reference("It was played in the Santa Clara stadium [2].", ["Santa Clara"])
    assert contains_reference("completed in 18890", ["1889"]) == 0.0
    assert contains_reference("completed in 1889", ["1889", "never"]) == 1.0
    assert contains_reference("anything", ["the"]) == 0.0  # a reference that normalises away


def test_metrics_need_references() -> None:
    for metric in (exact_match, token_f1, contains_reference):
        with pytest.raises(ValueError, match="non-empty"):
            metric("x", [])
        with pytest.raises(ValueError, match="non-empty"):
            metric("x", "x")  # a bare string is not a list of references


def test_abstention_summary_counts_and_rates() -> None:
    rows = [
        ("answer", True),
        ("answer", True),
        ("answer", False),  # wrongly refused
        ("cannot_answer", False),  # rightly refused
        ("cannot_answer", True),  # answered the unanswerable
    ]
    s = abstention_summary(rows)  # type: ignore[arg-type]
    assert (s.answerable, s.answered_when_answerable) == (3, 2)
    assert (s.unanswerable, s.refused_when_unanswerable, s.refusals) == (2, 1, 2)
    assert s.answer_rate == pytest.approx(2 / 3)
    assert s.refusal_rate == pytest.approx(0.5)
    assert s.refusal_precision == pytest.approx(0.5)
    assert s.to_dict()["refusal_precision"] == pytest.approx(0.5)


def test_abstention_rates_are_none_without_a_denominator() -> None:
    s = abstention_summary([("answer", True)])
    assert s.answer_rate == 1.0
    assert s.refusal_rate is None and s.refusal_precision is None
    with pytest.raises(ValueError, match="expect"):
        abstention_summary([("maybe", True)])  # type: ignore[list-item]


SCHEMA = {
    "type": "object",
    "properties": {"days": {"type": "integer"}, "unit": {"enum": ["days", "hours"]}},
    "required": ["days"],
    "additionalProperties": False,
}


def test_format_compliance_parses_and_validates() -> None:
    assert format_compliance('{"days": 90}', SCHEMA) == 1.0
    assert format_compliance('Here:\n```json\n{"days": 90, "unit": "days"}\n```\n', SCHEMA) == 1.0
    assert format_compliance('{"days": 90} [1]', SCHEMA) == 1.0  # trailing citation marker
    assert format_compliance('{"days": "ninety"}', SCHEMA) == 0.0
    assert format_compliance('{"days": 90, "extra": 1}', SCHEMA) == 0.0
    assert format_compliance("ninety days", SCHEMA) == 0.0
    assert format_compliance('{"days": 90} and more words', SCHEMA) == 0.0
    assert format_compliance("anything", None) is None


def test_format_error_says_why() -> None:
    assert format_error('{"days": 90}', SCHEMA) is None
    problem = format_error('{"days": "x"}', SCHEMA)
    assert problem is not None and "days" in problem and "integer" in problem
    assert str(format_error("{", SCHEMA)).startswith("not JSON")
    assert parse_json_reply("```\n[1, 2]\n```") == [1, 2]


def test_schema_problem_flags_an_invalid_schema() -> None:
    assert schema_problem(SCHEMA) is None
    assert schema_problem({"type": "not-a-type"}) is not None


def _answer(text: str, mode: str = "generative", **kw: object) -> Answer:
    kw.setdefault("citations", ())
    return Answer(question="q", text=text, mode=mode, grounded=True, **kw)  # type: ignore[arg-type]


def _citation(number: int) -> Citation:
    return Citation(number, "d1", "c1", "/docs/d1.md", "D1", None, "snippet")


def test_citation_validity_counts_distinct_numbers() -> None:
    ok = _answer("A [1]. B [2].", citations=(_citation(1), _citation(2)))
    assert citation_validity(ok) == 1.0
    mixed = _answer("A [1]. B [7].", citations=(_citation(1),), invalid_citations=(7,))
    assert citation_validity(mixed) == 0.5
    assert citation_validity(_answer("No citations here.")) is None


def test_score_answer_keys_and_refused_answerable_case() -> None:
    case = EvalCase("c1", "q", reference_answers=("ninety days",))
    scores = score_answer(case, _answer(REFUSAL_PHRASE, "cannot_answer"))
    assert tuple(scores) == SCORE_KEYS
    assert scores["answered"] == 0.0 and scores["correct_abstention"] == 0.0
    assert (scores["em"], scores["f1"], scores["contains"]) == (0.0, 0.0, 0.0)
    assert scores["citation_validity"] is None and scores["grounded_share"] is None
    assert scores["format_ok"] is None


def test_score_answer_unanswerable_case() -> None:
    case = EvalCase("c2", "q", expect="cannot_answer")
    refused = score_answer(case, _answer(REFUSAL_PHRASE, "cannot_answer"))
    assert refused["correct_abstention"] == 1.0
    assert refused["em"] is None and refused["f1"] is None and refused["contains"] is None
    answered = score_answer(case, _answer("Bread needs flour."))
    assert answered["correct_abstention"] == 0.0 and answered["answered"] == 1.0


def test_score_answer_without_references_and_with_schema() -> None:
    case = EvalCase("c3", "q", output_schema=SCHEMA)
    ok = score_answer(case, _answer('{"days": 90}'))
    assert ok["em"] is None and ok["f1"] is None and ok["format_ok"] == 1.0
    refused = score_answer(case, _answer(REFUSAL_PHRASE, "cannot_answer"))
    assert refused["format_ok"] == 0.0  # asked for JSON, got a refusal


def test_real_answers_grounding_and_citations(tmp_path: Path) -> None:
    with answer_index(tmp_path) as retriever:
        good = ask(retriever, ON_TOPIC, "Rotate every API key every ninety days [1].")
        half = ask(
            retriever,
            ON_TOPIC,
            "Rotate every API key every ninety days [1]. Bananas ripen quickly in Ecuador [1].",
        )
        bad_ref = ask(retriever, ON_TOPIC, "Rotate every API key every ninety days [1][9].")
        refused = ask(retriever, OFF_TOPIC, "unused: the gate refuses first")
    assert good.mode == "generative" and grounded_share(good) == 1.0
    assert half.unsupported_sentences and grounded_share(half) == 0.5
    assert citation_validity(bad_ref) == 0.5
    assert refused.mode == "cannot_answer" and grounded_share(refused) is None
    case = EvalCase("k1", ON_TOPIC, reference_answers=("every ninety days",))
    scores = score_answer(case, good)
    assert scores["contains"] == 1.0 and scores["em"] == 0.0
    assert scores["f1"] == pytest.approx(
        f1_score(good.text.replace("[1]", ""), "every ninety days")
    )
    assert scores["grounded_share"] == 1.0 and scores["citation_validity"] == 1.0

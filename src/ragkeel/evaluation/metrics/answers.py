"""Answer metrics: pure functions from an ``EvalCase`` and an ``Answer`` to per-query scores.

- ``exact_match`` / ``token_f1``: the official SQuAD v1.1 evaluation logic (``normalize_answer``,
  ``exact_match_score``, ``f1_score``; max over the reference answers), applied to the answer text
  with its ``[n]`` citation markers stripped. As in v1.1, an empty prediction scores F1 0.
- ``contains_reference``: some normalised reference occurs in the normalised prediction as a
  whole-token span. Fair for sentence answers against span gold, where EM is 0 and F1 is
  diluted by the sentence's other words.
- Abstention: per row ``answered`` (mode is not ``cannot_answer``); over rows,
  ``abstention_summary`` gives answered-when-answerable, refused-when-unanswerable and the
  precision of "cannot answer" (the share of refusals that were right), each with its counts.
- ``citation_validity``: valid cited numbers / all cited numbers (distinct numbers).
- ``grounded_share``: the share of answer sentences supported by their cited sources, by the
  answer flow's own deterministic check (``generation.citations.check_answer``): its sentences
  are ``split_sentences(answer.text)`` and the unsupported ones are ``answer.unsupported_sentences``,
  so this is that check's result, not a second scorer.
- ``format_compliance``: the answer parses as JSON (a fenced ```json block is tolerated, so are
  trailing citation markers) and validates against the case's JSON schema.

``score_answer`` returns exactly ``SCORE_KEYS``; ``None`` means "not applicable" (no references,
no schema, nothing cited), never 0, so aggregates average only over the rows that apply.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import SchemaError, best_match
from jsonschema.validators import validator_for

from ragkeel.evaluation.cases import EvalCase, Expect
from ragkeel.generation.answer import Answer
from ragkeel.generation.text import CITATION, split_sentences, strip_citations

SCORE_KEYS = (
    "em",
    "f1",
    "contains",
    "answered",
    "correct_abstention",
    "citation_validity",
    "grounded_share",
    "format_ok",
)
AnswerScores = dict[str, float | None]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\r?\n(.*?)\r?\n?```", re.DOTALL | re.IGNORECASE)


# --- SQuAD v1.1 (official evaluate-v1.1.py logic) -------------------------------------------


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (SQuAD v1.1)."""
    lowered = text.lower()
    no_punct = "".join(ch for ch in lowered if ch not in _PUNCTUATION)
    no_articles = _ARTICLES.sub(" ", no_punct)
    return " ".join(no_articles.split())


def exact_match_score(prediction: str, ground_truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def f1_score(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """Max SQuAD exact match over ``references`` (citation markers stripped first)."""
    return max(exact_match_score(_bare(prediction), r) for r in _required(references))


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """Max SQuAD token F1 over ``references`` (citation markers stripped first)."""
    return max(f1_score(_bare(prediction), r) for r in _required(references))


def contains_reference(prediction: str, references: Sequence[str]) -> float:
    """1.0 when a normalised reference is a whole-token span of the normalised prediction
    ("1889" is in "completed in 1889", not in "18890"). A reference that normalises to nothing
    never matches."""
    haystack = f" {normalize_answer(_bare(prediction))} "
    refs = (normalize_answer(r) for r in _required(references))
    return float(any(ref and f" {ref} " in haystack for ref in refs))


def _bare(prediction: str) -> str:
    return strip_citations(prediction)


def _required(references: Sequence[str]) -> Sequence[str]:
    if isinstance(references, str) or not references:
        raise ValueError("references must be a non-empty sequence of strings")
    return references


# --- abstention -------------------------------------------------------------------------------


def answered(answer: Answer) -> bool:
    """The system gave an answer (generative or extractive), not "cannot answer"."""
    return answer.mode != "cannot_answer"


@dataclass(frozen=True, slots=True)
class AbstentionSummary:
    """Abstention over rows with an ``expect``. Rates are ``None`` when their denominator is 0."""

    answerable: int  # rows expecting an answer
    answered_when_answerable: int
    unanswerable: int  # rows expecting "cannot answer"
    refused_when_unanswerable: int
    refusals: int  # rows the system refused, whatever was expected

    @property
    def answer_rate(self) -> float | None:
        """Answered-when-answerable: answered / answerable."""
        return _ratio(self.answered_when_answerable, self.answerable)

    @property
    def refusal_rate(self) -> float | None:
        """Refused-when-unanswerable: right refusals / unanswerable."""
        return _ratio(self.refused_when_unanswerable, self.unanswerable)

    @property
    def refusal_precision(self) -> float | None:
        """Precision of "cannot answer": right refusals / all refusals."""
        return _ratio(self.refused_when_unanswerable, self.refusals)

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "answerable": self.answerable,
            "answered_when_answerable": self.answered_when_answerable,
            "answer_rate": self.answer_rate,
            "unanswerable": self.unanswerable,
            "refused_when_unanswerable": self.refused_when_unanswerable,
            "refusal_rate": self.refusal_rate,
            "refusals": self.refusals,
            "refusal_precision": self.refusal_precision,
        }


def abstention_summary(rows: Iterable[tuple[Expect, bool]]) -> AbstentionSummary:
    """Aggregate ``(expect, answered)`` pairs, one per query."""
    counts = Counter((expect, did_answer) for expect, did_answer in rows)
    for expect, _ in counts:
        if expect not in ("answer", "cannot_answer"):
            raise ValueError(f"expect must be 'answer' or 'cannot_answer', got {expect!r}")
    return AbstentionSummary(
        answerable=counts[("answer", True)] + counts[("answer", False)],
        answered_when_answerable=counts[("answer", True)],
        unanswerable=counts[("cannot_answer", True)] + counts[("cannot_answer", False)],
        refused_when_unanswerable=counts[("cannot_answer", False)],
        refusals=counts[("answer", False)] + counts[("cannot_answer", False)],
    )


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# --- citations and grounding ------------------------------------------------------------------


def citation_validity(answer: Answer) -> float | None:
    """Valid cited numbers / all cited numbers (distinct); ``None`` when nothing is cited."""
    valid, invalid = len(answer.citations), len(answer.invalid_citations)
    return _ratio(valid, valid + invalid)


def grounded_share(answer: Answer) -> float | None:
    """Share of the answer's sentences that the answer-time support check found supported by
    their cited sources; ``None`` for a refusal or an answer without sentences."""
    if not answered(answer):
        return None
    total = len(split_sentences(answer.text))
    if total == 0:
        return None
    supported = total - len(answer.unsupported_sentences)
    return max(supported, 0) / total


# --- format -----------------------------------------------------------------------------------


def parse_json_reply(text: str) -> Any:
    """The JSON value in ``text``: the first fenced block's content if there is one, else the
    whole text; trailing citation markers (``{...} [1]``) are allowed after the value. Raises
    ``ValueError`` (``json.JSONDecodeError``) when it does not parse."""
    fenced = _FENCE.search(text)
    body = (fenced.group(1) if fenced else text).strip()
    value, end = json.JSONDecoder().raw_decode(body)
    rest = CITATION.sub("", body[end:]).strip()
    if rest:
        raise ValueError(f"unexpected text after the JSON value: {rest[:40]!r}")
    return value


def format_error(text: str, schema: Mapping[str, Any]) -> str | None:
    """Why ``text`` is not a JSON value valid under ``schema``; ``None`` when it is."""
    try:
        value = parse_json_reply(text)
    except ValueError as exc:
        return f"not JSON: {exc}"
    return _violation(value, schema)


def format_compliance(text: str, schema: Mapping[str, Any] | None) -> float | None:
    """1.0 when ``text`` parses and validates against ``schema``, else 0.0; ``None`` without
    a schema."""
    if schema is None:
        return None
    return 0.0 if format_error(text, schema) else 1.0


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why ``schema`` is not a valid JSON schema (under the draft its ``$schema`` names, else
    the latest); ``None`` when it is. Loaders call this so a broken schema fails at load time."""
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        return str(exc.message)
    return None


def _violation(value: Any, schema: Mapping[str, Any]) -> str | None:
    error = best_match(validator_for(schema)(schema).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"schema violation at {where}: {error.message}"


# --- one row ----------------------------------------------------------------------------------


def score_answer(case: EvalCase, answer: Answer) -> AnswerScores:
    """The per-query answer scores, keys exactly ``SCORE_KEYS`` (see the module docstring).

    - ``em``/``f1``/``contains``: ``None`` for ``expect: cannot_answer`` cases and cases
      without references; 0.0 when an answerable case was refused.
    - ``correct_abstention``: 1.0 when the system answered exactly when it was expected to.
    - ``citation_validity``/``grounded_share``: ``None`` when the system refused.
    - ``format_ok``: ``None`` without a schema; a refusal of an answerable case is 0.0.
    """
    did_answer = answered(answer)
    expects_answer = case.expect == "answer"
    scores: AnswerScores = dict.fromkeys(SCORE_KEYS)
    if expects_answer and case.reference_answers:
        refs = case.reference_answers
        text = answer.text if did_answer else ""
        scores["em"] = exact_match(text, refs) if did_answer else 0.0
        scores["f1"] = token_f1(text, refs) if did_answer else 0.0
        scores["contains"] = contains_reference(text, refs) if did_answer else 0.0
    scores["answered"] = float(did_answer)
    scores["correct_abstention"] = float(did_answer == expects_answer)
    if did_answer:
        scores["citation_validity"] = citation_validity(answer)
        scores["grounded_share"] = grounded_share(answer)
    if case.output_schema is not None and (did_answer or expects_answer):
        scores["format_ok"] = format_compliance(
            answer.text if did_answer else "", case.output_schema
        )
    return scores

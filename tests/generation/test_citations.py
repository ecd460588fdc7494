"""Citation parsing and validation, sentence support, refusal recognition."""

from __future__ import annotations

import pytest

from ragkeel.generation.citations import best_snippet, check_answer, is_refusal
from ragkeel.generation.templates import REFUSAL_PHRASE
from ragkeel.generation.text import citation_numbers, split_sentences, strip_citations

from .conftest import context_of

SOURCES = (
    "Rotate every API key every ninety days from the admin console.",
    "Revoke a leaked key at once; revoked keys stop working within one minute.",
    "On 3 March the model provider failed for forty minutes.",
)


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Keys rotate [1].", [1]),
        ("Keys rotate [1, 3].", [1, 3]),
        ("Keys rotate [1,2;3].", [1, 2, 3]),
        ("Keys rotate [1][2].", [1, 2]),
        ("Keys rotate [2] [1].", [2, 1]),
        ("Keys rotate [1-3].", [1, 2, 3]),
        ("Keys rotate [1–2].", [1, 2]),
        ("Keys rotate [Source 2].", [2]),
        ("Keys rotate [ 12 ].", [12]),
        ("Keys rotate [1-500].", [1, 500]),  # a silly range is read as its ends
        ("No citation (1) or [a] or [].", []),
    ],
)
def test_citation_forms(text: str, numbers: list[int]) -> None:
    assert citation_numbers(text) == numbers


def test_sentences_keep_trailing_citations_and_split_lines() -> None:
    text = "Keys rotate every 90 days.[1][2] See e.g. the console [1]. Done!\n- a list item"
    assert split_sentences(text) == [
        "Keys rotate every 90 days.[1][2]",
        "See e.g. the console [1].",
        "Done!",
        "- a list item",
    ]
    assert strip_citations("Keys rotate [1] every 90 days [2, 3].") == "Keys rotate every 90 days."


def test_wrapped_lines_join_but_headings_lists_tables_and_fields_do_not() -> None:
    text = (
        "Root cause\nThe provider had an outage in its\nfleet. It lasted\n40 minutes.\n"
        "Steps:\n1. Create a key.\n2. Store it (for\nexample in the vault).\n"
        "Region | Q2\nEMEA | 100\nplans.free.burst: 20\nplans.free.rpm: 60"
    )
    assert split_sentences(text) == [
        "Root cause",
        "The provider had an outage in its fleet.",
        "It lasted 40 minutes.",
        "Steps:",
        "1. Create a key.",
        "2. Store it (for example in the vault).",
        "Region | Q2",
        "EMEA | 100",
        "plans.free.burst: 20",
        "plans.free.rpm: 60",
    ]


def test_valid_answer_is_grounded() -> None:
    context = context_of(*SOURCES)
    check = check_answer(
        "Rotate each API key every ninety days [1]. Revoke a leaked key at once [2].", context
    )
    assert check.cited == (1, 2) and check.invalid == ()
    assert check.grounded and check.unsupported == () and not check.refusal
    assert all(s.coverage == 1.0 for s in check.sentences)


def test_crafted_wrong_citation_is_invalid_and_not_grounded() -> None:
    context = context_of(*SOURCES)
    check = check_answer("Rotate every API key every ninety days [1][7]. It fails [0].", context)
    assert check.cited == (1,)
    assert check.invalid == (7, 0)
    assert not check.grounded


def test_sentence_citing_only_a_missing_source_is_unsupported() -> None:
    check = check_answer("Rotate every API key every ninety days [7].", context_of(*SOURCES))
    assert check.cited == () and check.invalid == (7,)
    assert check.unsupported == ("Rotate every API key every ninety days [7].",)


def test_sentence_not_supported_by_its_cited_source_is_flagged() -> None:
    context = context_of(*SOURCES)
    answer = (
        "Rotate every API key every ninety days [1]. "
        "Keys are encrypted with quantum resistant lattice cryptography [1]."
    )
    check = check_answer(answer, context)
    assert check.invalid == ()
    assert check.unsupported == (
        "Keys are encrypted with quantum resistant lattice cryptography [1].",
    )
    assert not check.grounded
    flagged = check.sentences[1]
    assert flagged.cited == (1,) and flagged.coverage < 0.5 and not flagged.supported


def test_citing_the_wrong_source_is_flagged() -> None:
    check = check_answer("The model provider failed for forty minutes [1].", context_of(*SOURCES))
    assert not check.grounded and len(check.unsupported) == 1
    assert check_answer(
        "The model provider failed for forty minutes [3].", context_of(*SOURCES)
    ).grounded


def test_uncited_factual_sentence_is_unsupported_but_contentless_one_is_not() -> None:
    context = context_of(*SOURCES)
    check = check_answer("Rotate every API key every ninety days. Yes.", context)
    assert check.unsupported == ("Rotate every API key every ninety days.",)
    assert check_answer("Rotate every API key every ninety days [1]. Yes.", context).grounded


def test_support_threshold_is_configurable() -> None:
    context = context_of(*SOURCES)
    half = "Rotate keys using hardware tokens daily [1]."  # rotat, key of 5 terms: 40%
    assert not check_answer(half, context).grounded
    assert check_answer(half, context, min_support=0.4).grounded


def test_refusal_phrase_is_recognised() -> None:
    context = context_of(*SOURCES)
    for text in (
        REFUSAL_PHRASE,
        "i cannot answer this from the provided sources",
        f"Sorry. {REFUSAL_PHRASE} [2]",
    ):
        check = check_answer(text, context)
        assert check.refusal and check.grounded, text
    partial = check_answer(f"Rotate every API key every ninety days [1]. {REFUSAL_PHRASE}", context)
    assert not partial.refusal and partial.grounded
    assert not is_refusal("I can answer this from the sources.")


def test_best_snippet_is_the_closest_sentence() -> None:
    context = context_of("Intro line here. Keys rotate every ninety days. Unrelated closing words.")
    source = context.sources[0]
    assert best_snippet(source, "rotate keys") == "Keys rotate every ninety days."
    assert best_snippet(source, "zebra") == "Intro line here."
    assert best_snippet(source, "rotate keys", max_chars=10) == "Keys rota…"

"""The no-model answer: verbatim best sentences with their [n], grounded by construction."""

from __future__ import annotations

from ragkeel.generation.citations import check_answer
from ragkeel.generation.context import pack_context
from ragkeel.generation.extractive import extract_sentences, render_extractive

from .conftest import context_of, count, hit

SOURCES = (
    "Keys overview. Rotate every API key every ninety days from the admin console. "
    "The console lives under Security.",
    "Revoke a leaked API key at once. Revoked keys stop working within one minute [12].",
    "On 3 March the model provider failed for forty minutes.",
)


def test_picks_sentences_overlapping_the_question_with_citations() -> None:
    context = context_of(*SOURCES)
    picked = extract_sentences("How often do I rotate an API key?", context)
    assert picked[0].number == 1
    assert picked[0].text == "Rotate every API key every ninety days from the admin console."
    assert all(p.score > 0 for p in picked) and len(picked) <= 3
    text = render_extractive(picked)
    assert text.startswith("Rotate every API key every ninety days from the admin console [1].")
    check = check_answer(text, context)
    assert check.grounded and check.invalid == ()


def test_rare_terms_outweigh_common_ones() -> None:
    context = context_of(*SOURCES)
    picked = extract_sentences("When does a revoked key stop working?", context)
    assert picked[0].number == 2 and picked[0].text.startswith("Revoked keys stop working")
    assert "[12]" not in picked[0].text  # citation-like markers of the source are removed


def test_respects_max_sentences_and_relative_floor() -> None:
    context = context_of(*SOURCES)
    assert len(extract_sentences("API key", context, max_sentences=1)) == 1
    only_best = extract_sentences("forty minutes provider", context, min_relative=1.0)
    assert [p.number for p in only_best] == [3]


def test_no_overlap_falls_back_to_the_lead_sentence_of_source_one() -> None:
    context = context_of(*SOURCES)
    (lead,) = extract_sentences("zebra giraffe", context)
    assert (lead.number, lead.text, lead.score) == (1, "Keys overview.", 0.0)


def test_empty_context_extracts_nothing() -> None:
    assert extract_sentences("anything", pack_context([], count, 100)) == ()


def test_long_sentences_are_clipped_and_still_grounded() -> None:
    long = "Rotation " + " ".join(f"step{i} detail" for i in range(100)) + "."
    context = pack_context([hit("a", long)], count, 10_000)
    (picked,) = extract_sentences("rotation steps", context)
    assert len(picked.text) <= 310 and picked.text.endswith("…")
    assert check_answer(render_extractive((picked,)), context).grounded

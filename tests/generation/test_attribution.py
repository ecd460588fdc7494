"""Citations the model forgot are added only where one packed source verifiably supports the
sentence; unsupported sentences stay unsupported."""

from __future__ import annotations

from ragkeel.generation.citations import attribute_uncited, check_answer
from ragkeel.generation.context import pack_context
from ragkeel.tokens import RegexTokenCounter
from ragkeel.types import Chunk, SearchHit


def context_of(*texts: str):  # type: ignore[no-untyped-def]
    hits = [
        SearchHit(Chunk(f"c{i}", f"d{i}", "kb", 0, t, 0, len(t), title=f"Doc {i}"), 1.0 - i / 10)
        for i, t in enumerate(texts)
    ]
    return pack_context(hits, RegexTokenCounter().count, 500)


def test_uncited_supported_sentence_gets_its_source() -> None:
    ctx = context_of(
        "The billing service retries failed invoices three times.",
        "Production API keys must be rotated every ninety days.",
    )
    text, inferred = attribute_uncited("Production API keys are rotated every ninety days.", ctx)
    assert inferred == (2,) and text == "Production API keys are rotated every ninety days [2]."
    assert check_answer(text, ctx).grounded


def test_unsupported_sentence_is_left_alone() -> None:
    ctx = context_of("Production API keys must be rotated every ninety days.")
    answer = "Paris is the capital of France and hosts the Louvre museum."
    text, inferred = attribute_uncited(answer, ctx)
    assert (text, inferred) == (answer, ())
    assert not check_answer(text, ctx).grounded


def test_cited_sentences_and_refusals_are_untouched() -> None:
    ctx = context_of("Production API keys must be rotated every ninety days.")
    cited = (
        "Keys are rotated every ninety days [1]. I cannot answer this from the provided sources."
    )
    assert attribute_uncited(cited, ctx) == (cited, ())


def test_sentence_wrapped_over_lines_gets_its_source() -> None:
    # `make run`'s first answer under answer_v3 (issue 11): the model copied runbook steps with
    # their line wrapping and no [n]; split_sentences joins the lines, so the sentence was never
    # found in the text, never cited, and the whole answer came back not grounded.
    ctx = context_of(
        "Production keys must be rotated every 90 days.",
        "2. Store the new secret in the vault path the service reads (for example\n"
        "   secret/billing-prod/acme-api-key). Never paste keys into tickets or chat.\n"
        "4. Watch the Key usage panel on the project dashboard until the old key shows no\n"
        "   requests for at least 30 minutes.",
    )
    answer = (
        "2. Store the new secret in the vault path the service reads (for example\n"
        "   secret/billing-prod/acme-api-key).\n"
        "4. Watch the Key usage panel on the project dashboard until the old key shows no\n"
        "   requests for at least 30 minutes."
    )
    assert not check_answer(answer, ctx).grounded
    text, inferred = attribute_uncited(answer, ctx)
    assert inferred == (2,)
    assert text == answer.replace("acme-api-key).", "acme-api-key) [2].").replace(
        "30 minutes.", "30 minutes [2]."
    )
    assert check_answer(text, ctx).grounded

"""clean_text: each rule on its own, and idempotence as a property."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragkeel.ingestion.cleaning import clean_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("cafe\u0301", "caf\u00e9"),  # NFC composes
        ("x\u00b2 and \u00bd", "x\u00b2 and \u00bd"),  # NFKC would change these; NFC keeps them
        ("inter-\nnational", "international"),
        ("inter-\n   national", "international"),
        ("Acme-\nCloud", "Acme-\nCloud"),  # uppercase after the break: a real hyphen
        ("page 12-\n13", "page 12-\n13"),
        ("well-\n\nknown", "well-\n\nknown"),  # a paragraph break is not a line-end hyphen
        ("a\u00a0b\u2009c\u3000d", "a b c d"),
        ("ctrl\x00\x07\x1bchars\tkept\n", "ctrlchars\tkept"),
        ("too    many  spaces", "too many spaces"),
        ("trailing   \nspaces\t\n", "trailing\nspaces"),
        ("a\n\n\n\n\nb", "a\n\nb"),
        ("\ufb01nance \ufb02ow o\ufb03ce", "finance flow office"),
        ("co\u00adoperate zero\u200bwidth\ufeff", "cooperate zerowidth"),
        ("windows\r\nline\rends", "windows\nline\nends"),
        ("  \n  outer whitespace  \n\n", "outer whitespace"),
        ("    indented code\n        deeper", "indented code\n        deeper"),
    ],
)
def test_clean_text_rules(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_zero_width_joiners_are_kept() -> None:
    family = "\U0001f469\u200d\U0001f467"  # woman ZWJ girl: one emoji
    assert clean_text(family) == family


def test_lone_surrogates_are_dropped() -> None:
    assert clean_text("a\ud800b") == "ab"


_TRICKY = st.text(
    alphabet=st.sampled_from(
        list("aZé-  \n\t\r\x00\x85\u00a0\u00ad\u200b\u0301\ufb01\u2029\ud800")
    ),
    max_size=60,
)


@settings(max_examples=400, database=None, deadline=None)
@given(st.one_of(_TRICKY, st.text(max_size=200)))
def test_clean_text_is_idempotent(text: str) -> None:
    once = clean_text(text)
    assert clean_text(once) == once


@settings(max_examples=200, database=None, deadline=None)
@given(st.one_of(_TRICKY, st.text(max_size=200)))
def test_clean_text_output_invariants(text: str) -> None:
    out = clean_text(text)
    assert unicodedata.is_normalized("NFC", out)
    assert "\n\n\n" not in out
    assert out == out.strip()
    assert all(line == line.rstrip(" \t") for line in out.split("\n"))
    assert not any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in out)

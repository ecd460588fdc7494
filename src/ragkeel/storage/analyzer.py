"""Text analysis for the BM25 keyword index: lowercase, word tokens of two or more characters,
Lucene's English stop words removed, Snowball English stemming (PyStemmer).

This matches the analysis that gets bm25s to nDCG@10 0.687 on SciFact; the choice is measured in
docs/benchmarks.md. Stemming results are memoised: corpora repeat a small vocabulary.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import Stemmer

_TOKEN = re.compile(r"(?u)\b\w\w+\b")

# Lucene's EnglishAnalyzer stop set (also bm25s's STOPWORDS_EN).
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)

_stemmer = Stemmer.Stemmer("english")


@lru_cache(maxsize=500_000)
def _stem(word: str) -> str:
    return str(_stemmer.stemWord(word))


def analyze(text: str) -> list[str]:
    """Terms of ``text`` in order (with repeats)."""
    return [_stem(w) for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS]


def term_frequencies(text: str) -> Counter[str]:
    return Counter(analyze(text))

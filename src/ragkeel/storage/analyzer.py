"""Text analysis for the BM25 keyword index, one ``Analyzer`` per language (issue 15).

Every collection records the language its keyword index was built with (``collections.
language``, SQLite and PostgreSQL); its postings are written with that language's analyzer and
a query is analysed with the language of each collection it searches (``analyzer_for``), never
with the process's setting. Both stores compute terms here, in Python (PostgreSQL's BM25 only
sums the postings this module produced), so both score alike.

English (the default, and every collection written before issue 15) is unchanged: lowercase
(``str.lower``), word tokens of two or more characters, Lucene's English stop words removed,
Snowball English stemming (PyStemmer). This is the analysis that gets bm25s to nDCG@10 0.687 on
SciFact (docs/benchmarks.md); keeping it byte for byte keeps existing indexes valid.

Every other language (``languages.SUPPORTED_LANGUAGES``: PyStemmer's Snowball stemmers):

- Unicode NFKC, then ``casefold`` (so a decomposed "Mädchen" — "a" + U+0308 — is one word,
  "ß" matches "ss", full-width letters their ASCII forms);
- the same tokens: ``\\w`` is Unicode-aware, so ä ö ü ß é ñ stay inside words;
- stop words from the ``stop-words`` package (its list of that language, normalised the same
  way; for German the Snowball list with a few additions); a language it lacks has none;
- the language's Snowball stemmer.

Stems are memoised per language: corpora repeat a small vocabulary.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from functools import cache, lru_cache

import Stemmer
from stop_words import AVAILABLE_LANGUAGES, get_stop_words

from ragkeel.languages import DEFAULT_LANGUAGE, check_language

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


def normalize(text: str) -> str:
    """NFKC + casefold: what every language but English analyses."""
    return unicodedata.normalize("NFKC", text).casefold()


def _lowercase(text: str) -> str:
    return text.lower()


class Analyzer:
    """Terms of a text in one language: ``analyze`` (in order, with repeats) and
    ``term_frequencies``. Get one with ``analyzer_for``."""

    def __init__(
        self,
        language: str,
        stop_words: frozenset[str],
        fold: Callable[[str], str],
        cache_size: int,
    ) -> None:
        self.language = language
        self.stop_words = stop_words
        self._fold = fold
        stemmer = Stemmer.Stemmer(language)
        self._stem: Callable[[str], str] = lru_cache(maxsize=cache_size)(
            lambda word: str(stemmer.stemWord(word))
        )

    def analyze(self, text: str) -> list[str]:
        stop, stem = self.stop_words, self._stem
        return [stem(w) for w in _TOKEN.findall(self._fold(text)) if w not in stop]

    def term_frequencies(self, text: str) -> Counter[str]:
        return Counter(self.analyze(text))

    def __repr__(self) -> str:
        return f"Analyzer({self.language!r}, {len(self.stop_words)} stop words)"


def stop_words_of(language: str) -> frozenset[str]:
    """The stop words ``language`` is analysed with (normalised like its text)."""
    if language == DEFAULT_LANGUAGE:
        return STOPWORDS
    if language not in AVAILABLE_LANGUAGES:
        return frozenset()
    return frozenset(normalize(w) for w in get_stop_words(language))


@cache
def analyzer_for(language: str) -> Analyzer:
    """The analyzer of ``language`` (any case); ``LANGUAGE_UNSUPPORTED`` listing the supported
    ones for a language PyStemmer has no stemmer for."""
    name = check_language(language)
    if name != language:
        return analyzer_for(name)
    if name == DEFAULT_LANGUAGE:
        return Analyzer(name, STOPWORDS, _lowercase, 500_000)
    return Analyzer(name, stop_words_of(name), normalize, 200_000)


_english = analyzer_for(DEFAULT_LANGUAGE)


def analyze(text: str) -> list[str]:
    """English terms of ``text`` in order (with repeats): the answer flow's word overlap
    (packing, citations, the extractive answer) and the cache guards use it."""
    return _english.analyze(text)


def term_frequencies(text: str) -> Counter[str]:
    return _english.term_frequencies(text)

"""The languages the keyword index can analyse (issue 15): Snowball's, as PyStemmer ships them.

A language is named as PyStemmer names its stemmer (``english``, ``german``, ``french``...;
``Stemmer.algorithms()``), case-insensitively; ``porter`` (the original Porter algorithm, an
older English stemmer) is not offered as a language. The setting ``retrieval.language`` and
every collection's recorded language go through ``check_language``; the analysis itself
(tokens, stop words, stems) is ``storage/analyzer.py``.

Core: settings validates with it, so it needs only the error tree and PyStemmer.
"""

from __future__ import annotations

import Stemmer

from ragkeel.errors import LanguageError, LanguageMismatchError

DEFAULT_LANGUAGE = "english"  # what every collection written before issue 15 was analysed with

SUPPORTED_LANGUAGES: tuple[str, ...] = tuple(
    sorted(name for name in Stemmer.algorithms() if name != "porter")
)


def check_language(name: str) -> str:
    """``name`` as the canonical language name (lowercase, trimmed); ``LANGUAGE_UNSUPPORTED``
    listing the supported ones when PyStemmer has no stemmer by that name."""
    canonical = name.strip().lower()
    if canonical not in SUPPORTED_LANGUAGES:
        raise LanguageError(
            f"no keyword analyzer for language {name!r}",
            hint=f"use one of {', '.join(SUPPORTED_LANGUAGES)}",
        )
    return canonical


def language_mismatch(collection: str, has: str, wanted: str) -> LanguageMismatchError:
    """The error for documents in ``wanted`` written into ``collection``, indexed in ``has``."""
    return LanguageMismatchError(
        f"collection {collection!r} is indexed in {has}; cannot add documents in {wanted}",
        hint="ingest without a language (the collection's is used), into another collection, "
        f"or change its language first: `ragkeel collections reindex {collection} "
        f"--language {wanted}`",
    )

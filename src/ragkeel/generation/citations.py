"""Validate an answer against its packed context: the code, not the prompt, keeps answers honest.

- Citations: every ``[n]`` (also ``[n, m]``, ``[n][m]``, ``[n-m]``) must name a packed source;
  numbers that do not are reported as ``invalid`` and left out of ``cited``.
- Support: the answer is split into sentences; a sentence is *supported* when at least
  ``min_support`` (default 50%) of its content words (the keyword index's analyzer: lowercased,
  stemmed; minus function words, ``text.FUNCTION_WORDS``) occur in the sources it cites. A sentence that cites no valid source
  is unsupported, unless it has no content words or it is the refusal phrase.
- ``grounded``: no invalid numbers and every sentence supported.
- ``refusal``: the answer says the refusal phrase and nothing else of substance.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ragkeel.generation.context import PackedContext, Source
from ragkeel.generation.templates import REFUSAL_PHRASE
from ragkeel.generation.text import (
    citation_numbers,
    content_terms,
    split_sentences,
    strip_citations,
)
from ragkeel.storage.analyzer import analyze

DEFAULT_MIN_SUPPORT = 0.5
SNIPPET_CHARS = 240
_NON_WORD = re.compile(r"\W+")


@dataclass(frozen=True, slots=True)
class SentenceSupport:
    text: str
    cited: tuple[int, ...]  # valid source numbers the sentence cites
    coverage: float  # share of its content words found in those sources (1.0 if it has none)
    supported: bool


@dataclass(frozen=True, slots=True)
class CitationCheck:
    cited: tuple[int, ...]  # valid numbers, in order of first appearance
    invalid: tuple[int, ...]  # numbers with no packed source, in order of first appearance
    sentences: tuple[SentenceSupport, ...]
    refusal: bool

    @property
    def unsupported(self) -> tuple[str, ...]:
        return tuple(s.text for s in self.sentences if not s.supported)

    @property
    def grounded(self) -> bool:
        return not self.invalid and all(s.supported for s in self.sentences)


def check_answer(
    text: str,
    context: PackedContext,
    *,
    min_support: float = DEFAULT_MIN_SUPPORT,
    refusal_phrase: str = REFUSAL_PHRASE,
) -> CitationCheck:
    numbers = citation_numbers(text)
    valid = {s.number for s in context.sources}
    source_terms = {s.number: frozenset(analyze(f"{s.label}\n{s.text}")) for s in context.sources}
    sentences: list[SentenceSupport] = []
    substantive = refused = False
    for sentence in split_sentences(text):
        if is_refusal(sentence, refusal_phrase):
            refused = True
            sentences.append(SentenceSupport(sentence, (), 1.0, True))
            continue
        cited = _unique(n for n in citation_numbers(sentence) if n in valid)
        terms = set(content_terms(strip_citations(sentence)))
        substantive = substantive or bool(terms)
        known = frozenset().union(*(source_terms[n] for n in cited))
        coverage = len(terms & known) / len(terms) if terms else 1.0
        supported = not terms or (bool(cited) and coverage >= min_support)
        sentences.append(SentenceSupport(sentence, cited, round(coverage, 4), supported))
    return CitationCheck(
        cited=_unique(n for n in numbers if n in valid),
        invalid=_unique(n for n in numbers if n not in valid),
        sentences=tuple(sentences),
        refusal=refused and not substantive,
    )


def attribute_uncited(
    text: str,
    context: PackedContext,
    *,
    min_support: float = DEFAULT_MIN_SUPPORT,
    refusal_phrase: str = REFUSAL_PHRASE,
) -> tuple[str, tuple[int, ...]]:
    """Add a citation to each sentence that has none but is verifiably supported by one packed
    source: the source covering most of its content words, if it covers at least
    ``min_support`` of them and at least two (small models often answer right but forget the
    ``[n]``). Returns the new text and the inferred numbers. Nothing is added to a sentence no
    single source supports, so an unsupported sentence stays unsupported. A sentence wrapped
    over several lines (list items copied from a runbook) is found and cited too."""
    source_terms = {s.number: frozenset(analyze(f"{s.label}\n{s.text}")) for s in context.sources}
    inferred: list[int] = []
    for sentence in split_sentences(text):
        if citation_numbers(sentence) or is_refusal(sentence, refusal_phrase):
            continue
        terms = set(content_terms(sentence))
        span = _find(text, sentence)
        if len(terms) < 2 or span is None:
            continue
        best = max(source_terms, key=lambda n: len(terms & source_terms[n]), default=None)
        if best is None:
            continue
        shared = len(terms & source_terms[best])
        if shared < 2 or shared / len(terms) < min_support:
            continue
        start, stop = span  # in ``text``: its line breaks and indents are kept
        end = start + len(text[start:stop].rstrip(".!?;:"))
        text = f"{text[:end]} [{best}]{text[end:]}"
        inferred.append(best)
    return text, _unique(inferred)


def _find(text: str, sentence: str) -> tuple[int, int] | None:
    """Where ``sentence`` (from ``split_sentences``, which joins wrapped lines with one space)
    first occurs in ``text``, any run of whitespace matching any other; None if it does not."""
    words = sentence.split()
    if not words:
        return None
    match = re.search(r"\s+".join(map(re.escape, words)), text)
    return (match.start(), match.end()) if match else None


def is_refusal(text: str, refusal_phrase: str = REFUSAL_PHRASE) -> bool:
    """``text`` contains the refusal phrase, ignoring case, punctuation and citations."""
    phrase = _normalise(refusal_phrase)
    return bool(phrase) and phrase in _normalise(strip_citations(text))


def best_snippet(source: Source, near: str, max_chars: int = SNIPPET_CHARS) -> str:
    """The sentence of ``source`` sharing the most content words with ``near`` (the answer
    sentences that cite it), cut to ``max_chars``; the source's start when nothing is shared."""
    wanted = set(analyze(near))
    sentences = split_sentences(source.text) or [source.text]
    best = max(sentences, key=lambda s: len(wanted & set(analyze(s))))
    if not wanted & set(analyze(best)):
        best = sentences[0]
    return best if len(best) <= max_chars else best[: max_chars - 1].rstrip() + "…"


def _normalise(text: str) -> str:
    return _NON_WORD.sub(" ", text.lower()).strip()


def _unique(numbers: Iterable[int]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(numbers))

"""The no-model answer: the best sentences of the packed sources, each with its ``[n]``.

Every sentence of every packed source is scored by the question's content terms it contains
(analysed like the keyword index, function words out). A term weighs ``1 + idf``, idf being
BM25's over the packed sources: every shared term counts, rarer ones more (idf alone would zero
the topic term that all retrieved sources share). The sum is scaled by ``1 + density`` (the
share of the sentence's terms that are question terms: on-point sentences beat long ones that
mention a term in passing) and by a retrieval-rank prior ``1 / (1 + 0.2 (n - 1))`` for
source ``n``. Ties go to the better-ranked source, then to the
earlier sentence. Up to ``max_sentences`` sentences scoring at least ``min_relative`` of the
best one are kept, best first; when no sentence shares a term with the question, the first
sentence of source [1] stands in (retrieval ranked it first). Sentences are copied verbatim
(citation-like markers of the source removed, long ones cut at a word), so the answer is
grounded by construction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ragkeel.generation.context import PackedContext
from ragkeel.generation.text import CITATION, content_terms, idf_weights, split_sentences
from ragkeel.storage.analyzer import analyze

DEFAULT_SENTENCES = 3
MIN_RELATIVE = 0.3
MAX_SENTENCE_CHARS = 300
RANK_DECAY = 0.2
MIN_TERMS = 3  # shorter lines (headings, labels) only when nothing longer matches


@dataclass(frozen=True, slots=True)
class ExtractedSentence:
    number: int  # source number
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class _Candidate:
    number: int
    position: int
    text: str
    terms: frozenset[str]


def extract_sentences(
    question: str,
    context: PackedContext,
    *,
    max_sentences: int = DEFAULT_SENTENCES,
    min_relative: float = MIN_RELATIVE,
) -> tuple[ExtractedSentence, ...]:
    candidates = _candidates(context)
    if not candidates:
        return ()
    wanted = set(content_terms(question))
    idf = _idf(context, wanted)
    scored = sorted(
        ((_score(c, wanted, idf), c) for c in candidates),
        key=lambda pair: (-pair[0], pair[1].number, pair[1].position),
    )
    if scored[0][0] <= 0:
        lead = min(candidates, key=lambda c: (c.number, c.position))
        return (ExtractedSentence(lead.number, lead.text, 0.0),)
    floor = scored[0][0] * min_relative
    chosen = [(s, c) for s, c in scored if s > 0 and s >= floor and len(c.terms) >= MIN_TERMS]
    if not chosen:
        chosen = scored[:1]
    picked: list[ExtractedSentence] = []
    seen: set[frozenset[str]] = set()
    for score, c in chosen:
        if c.terms not in seen and len(picked) < max_sentences:
            seen.add(c.terms)
            picked.append(ExtractedSentence(c.number, c.text, round(score, 4)))
    return tuple(picked)


def render_extractive(sentences: tuple[ExtractedSentence, ...]) -> str:
    """Sentences joined, each with ``[n]`` before its final punctuation (``... days [1].``)."""
    return " ".join(_cite(s.text, s.number) for s in sentences)


def _cite(text: str, number: int) -> str:
    match = re.search(r"[.!?]+$", text)
    if match:
        return f"{text[: match.start()]} [{number}]{match.group()}"
    return f"{text} [{number}]."


def _candidates(context: PackedContext) -> list[_Candidate]:
    out: list[_Candidate] = []
    for source in context.sources:
        text = source.text.removesuffix("…").rstrip()
        for position, sentence in enumerate(split_sentences(text)):
            clean = _clip(re.sub(r"\s+", " ", CITATION.sub("", sentence)).strip())
            terms = frozenset(analyze(clean))
            if terms:
                out.append(_Candidate(source.number, position, clean, terms))
    return out


def _score(candidate: _Candidate, wanted: set[str], idf: dict[str, float]) -> float:
    shared = candidate.terms & wanted
    density = len(shared) / len(candidate.terms)
    matched = sum(1.0 + idf[t] for t in shared)
    return matched * (1.0 + density) / (1.0 + RANK_DECAY * (candidate.number - 1))


def _idf(context: PackedContext, terms: set[str]) -> dict[str, float]:
    return idf_weights(terms, [frozenset(analyze(s.text)) for s in context.sources])


def _clip(text: str) -> str:
    if len(text) <= MAX_SENTENCE_CHARS:
        return text
    return text[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + " …"

"""Guards against the semantic cache's classic false hits (issue 14).

Two questions can sit close in embedding space and still ask different things: "Did X win?" /
"Did X not win?", "revenue in 2021" / "revenue in 2022", "Apple's" / "Amazon's", "the largest" /
"the smallest", "who" / "when". Sentence embedders are weak on exactly these (all-MiniLM-L6-v2
puts "Oxidative DNA damage activates / inhibits STING signalling" at cosine 0.992, and with the
embedding alone no threshold keeps false hits under 1 %: docs/benchmarks.md), so the semantic
matcher (``caching/semantic.py``) serves a cached answer only when no guard objects.

Each guard reads the *facts* of both questions (``QuestionFacts``, pure regex and word lists,
computed once per text) and objects when they differ:

    guard          objects when the two questions differ in...
    negation       the count of negations (not, n't, no, never, none, nothing, without, ...)
    number         numbers and number words (digits with their suffixes: 1990s, 3rd, 50%;
                   one..twenty, tens, ordinals first..tenth), years included
    date           months, weekdays, quarters (Q3 = third quarter = 3rd quarter), halves
    unit           units and scales (%, $, dollars, km, kg, years, million, billion, ...)
    entity         named things: capitalised spans, acronyms and mixed-case names, quoted
                   strings; each one of either question must occur, as words, in the other
    comparative    comparatives, superlatives and order words (most/least, before/after,
                   larger/smaller, increase/decrease, any other "-est" word)
    polarity       directions and valences (induces/suppresses, improves/worsens,
                   positively/negatively, presence/absence, common/rare, high/low, ...)
    comparison_order  what follows "than", "compared to", "versus" ("men more than women" /
                   "women more than men")
    question_word  the kinds of question asked (who, what/which, when, where, why, how many
                   or much, how long, ...)
    content_words  any content word (Snowball stem, frames and filler left out) on one side
                   only: a synonym swap is a miss, a different term is never a hit

The guards are conservative by design: when in doubt they object, and a false objection costs
only a cache miss (the question is answered as usual), while a false hit serves the wrong answer.
Entity containment is case-insensitive so that "what did apple report" still matches "What did
Apple report"; every other guard compares normalised sets, so reordering, politeness, filler,
case and punctuation pass. ``conflict(a, b, guards)`` names the first guard that objects, or
``None``; ``guards`` (default ``ALL_GUARDS``) chooses which are asked (the sweep measures the
guards with and without ``content_words``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from ragkeel.caching import guard_words as lex
from ragkeel.storage.analyzer import analyze


class Guard(StrEnum):
    """The guards, in the order ``conflict`` asks them (the name lands in cache traces)."""

    NEGATION = "negation"
    NUMBER = "number"
    DATE = "date"
    UNIT = "unit"
    ENTITY = "entity"
    COMPARATIVE = "comparative"
    POLARITY = "polarity"
    COMPARISON_ORDER = "comparison_order"
    QUESTION_WORD = "question_word"
    CONTENT_WORDS = "content_words"


ALL_GUARDS: frozenset[Guard] = frozenset(Guard)


@dataclass(frozen=True)
class QuestionFacts:
    """What the guards compare, read from one question's text."""

    negations: int
    numbers: frozenset[str]
    dates: frozenset[str]
    units: frozenset[str]
    entities: frozenset[str]  # folded (lowercase words joined by single spaces)
    comparatives: frozenset[str]
    polarity: frozenset[str]
    compared: frozenset[str]  # the words after "than", "compared to", "versus"...
    question_words: frozenset[str]
    content: frozenset[str]  # stems of the content words (frames and filler left out)
    folded: str  # " " + the folded text + " ", for whole-word containment


def fold(text: str) -> str:
    """Lowercase words separated by single spaces: what entity containment compares."""
    lower = lex.POSSESSIVE.sub("", text.lower().replace("’", "'"))
    return " ".join(lex.FOLD.sub(" ", lower).split())


@lru_cache(maxsize=4096)
def facts(text: str) -> QuestionFacts:
    """The facts of ``text`` (cached: candidates are compared over and over)."""
    lower = text.lower().replace("’", "'")
    dates, rest = _dates(lower)
    return QuestionFacts(
        negations=_negations(lower),
        numbers=_numbers(rest),
        dates=dates,
        units=_units(rest),
        entities=_entities(text),
        comparatives=_comparatives(rest),
        polarity=_polarity(lower),
        compared=_compared(lower),
        question_words=_question_words(lower),
        content=_content(lower),
        folded=f" {fold(text)} ",
    )


def conflict(a: str, b: str, guards: Collection[Guard] = ALL_GUARDS) -> Guard | None:
    """The first of ``guards`` that objects to serving ``b``'s answer for ``a`` (symmetric), or
    None when none does."""
    fa, fb = facts(a), facts(b)
    for guard in Guard:
        if guard in guards and _CHECKS[guard](fa, fb):
            return guard
    return None


def _differ(field: str) -> Callable[[QuestionFacts, QuestionFacts], bool]:
    return lambda a, b: bool(getattr(a, field) != getattr(b, field))


_CHECKS: dict[Guard, Callable[[QuestionFacts, QuestionFacts], bool]] = {
    Guard.NEGATION: _differ("negations"),
    Guard.NUMBER: _differ("numbers"),
    Guard.DATE: _differ("dates"),
    Guard.UNIT: _differ("units"),
    Guard.ENTITY: lambda a, b: not _entities_shared(a, b),
    Guard.COMPARATIVE: _differ("comparatives"),
    Guard.POLARITY: _differ("polarity"),
    Guard.COMPARISON_ORDER: _differ("compared"),
    Guard.QUESTION_WORD: _differ("question_words"),
    Guard.CONTENT_WORDS: _differ("content"),
}


def _negations(lower: str) -> int:
    words = re.findall(r"[a-z']+", lower)
    return sum(w in lex.NEGATIONS for w in words) + len(lex.NT.findall(lower))


def _dates(lower: str) -> tuple[frozenset[str], str]:
    """Dates found, and the text with quarters and halves removed (so "third" in "third
    quarter" is not also read as an ordinal)."""
    found: set[str] = set()
    for m in lex.QUARTER.finditer(lower):
        found.add("q" + (m.group(1) or lex.RANK[m.group(2)]))
    for m in lex.HALF.finditer(lower):
        found.add("h" + (m.group(1) or lex.RANK[m.group(2)]))
    rest = lex.HALF.sub(" ", lex.QUARTER.sub(" ", lower))
    for w in re.findall(r"[a-z]+", rest):
        if w in lex.MONTHS and w != "may":  # "may" is far more often the verb
            found.add(lex.MONTHS[w])
        elif w in lex.WEEKDAYS:
            found.add(lex.WEEKDAYS[w])
    return frozenset(found), rest


def _numbers(lower: str) -> frozenset[str]:
    found = {m.group(0).replace(",", "").lower() for m in lex.DIGITS.finditer(lower)}
    for w in re.findall(r"[a-z]+", lower):
        if w in lex.NUMBER_WORDS:
            found.add(lex.NUMBER_WORDS[w])
        elif w in lex.ORDINALS:
            found.add(lex.ORDINALS[w])
    return frozenset(_canonical_number(n) for n in found)


def _canonical_number(token: str) -> str:
    for suffix in ("st", "nd", "rd"):
        if token.endswith(suffix) and token[:-2].isdigit():
            return token[:-2] + "th"  # 3rd and third both read "3th"
    return token


def _units(lower: str) -> frozenset[str]:
    found = {lex.UNIT_WORDS[m.group(1).lower()] for m in lex.UNIT_PATTERN.finditer(lower)}
    found.update(unit for symbol, unit in lex.UNIT_SYMBOLS.items() if symbol in lower)
    if "per cent" in lower:
        found.add("percent")
    return frozenset(found)


def _comparatives(lower: str) -> frozenset[str]:
    found = set()
    for w in re.findall(r"[a-z]+", lower):
        if w in lex.COMPARATIVES:
            found.add(lex.COMPARATIVES[w])
        elif lex.SUPERLATIVE.fullmatch(w) and w not in lex.NOT_SUPERLATIVE:
            found.add(w)
    return frozenset(found)


def _polarity(lower: str) -> frozenset[str]:
    found = set()
    for w in re.findall(r"[a-z]+", lower):
        m = lex.POLAR.match(w)
        if m is not None and m.lastgroup is not None:
            found.add(m.lastgroup)
    return frozenset(found)


def _compared(lower: str) -> frozenset[str]:
    return frozenset(fold(m.group(1)) for m in lex.COMPARED.finditer(lower))


def _content(lower: str) -> frozenset[str]:
    return frozenset(
        lex.SYNONYMS.get(t, t)
        for t in analyze(lower)
        if t not in lex.FILLER
        and t not in lex.COMPARED_ELSEWHERE
        and not any(c.isdigit() for c in t)
    )


def _question_words(lower: str) -> frozenset[str]:
    kinds = {kind for pattern, kind in lex.QUESTION_KINDS if pattern.search(lower)}
    for m in lex.HOW.finditer(lower):  # how many = how much; how long, how old... each its own
        kinds.add("how-many" if m.group(1) in ("many", "much") else f"how-{m.group(1)}")
    if lex.BARE_HOW.search(lower):
        kinds.add("how")
    return frozenset(kinds)


def _entities(text: str) -> frozenset[str]:
    spans: set[str] = {fold(q) for q in lex.QUOTED.findall(text) if fold(q)}
    current: list[str] = []
    for token in [*lex.TOKEN.findall(text), ""]:
        if token and _is_name(token):
            current.append(token)
            continue
        if current:
            spans.add(fold(" ".join(current)))
        current = []
    return frozenset(s for s in spans if s)


def _is_name(token: str) -> bool:
    lower = token.lower().replace("’", "'").rstrip(".")
    if lower in lex.NOT_NAMES or lower in lex.MONTHS or lower in lex.WEEKDAYS:
        return False  # not a name, or a date the date guard compares
    if lex.QUARTER.fullmatch(lower) or lex.HALF.fullmatch(lower):
        return False
    if token[0].isupper():
        return True
    return any(c.isupper() for c in token[1:])  # iPhone, eBay, mRNA


def _entities_shared(a: QuestionFacts, b: QuestionFacts) -> bool:
    return all(f" {e} " in b.folded for e in a.entities) and all(
        f" {e} " in a.folded for e in b.entities
    )

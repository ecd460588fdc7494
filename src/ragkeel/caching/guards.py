"""Guards against the semantic cache's classic false hits (issue 14).

Two questions can sit close in embedding space and still ask different things: "Did X win?" /
"Did X not win?", "revenue in 2021" / "revenue in 2022", "Apple's" / "Amazon's", "the largest" /
"the smallest", "who" / "when". Sentence embedders are known to be weak on exactly these, so the
semantic matcher (``caching/semantic.py``) serves a cached answer only when no guard objects.

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


def _words(text: str) -> list[str]:
    return text.split()


_NEGATIONS = frozenset(
    _words("not no never none nobody nothing neither nor nowhere without cannot cant isnt")
)
_NT = re.compile(r"n[’']t\b", re.IGNORECASE)  # doesn't, didn’t, won't: one negation each

_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        _words(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
}
_NUMBER_WORDS.update(
    {
        w: str(10 * i)
        for i, w in enumerate(_words("thirty forty fifty sixty seventy eighty ninety"), 3)
    }
)
_NUMBER_WORDS.update({"dozen": "12", "half": "0.5", "twice": "2x", "once": "1x", "thrice": "3x"})
_ORDINALS = {
    w: f"{i}th"
    for i, w in enumerate(
        _words("first second third fourth fifth sixth seventh eighth ninth tenth"), 1
    )
}
_DIGITS = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th|s)?\b", re.IGNORECASE)

_MONTHS = {
    **{
        m: m[:3]
        for m in _words(
            "january february march april may june july august september october november december"
        )
    },
    **{m: m for m in _words("jan feb mar apr jun jul aug sep sept oct nov dec")},
}
_MONTHS["sept"] = "sep"
_WEEKDAYS = {d: d[:3] for d in _words("monday tuesday wednesday thursday friday saturday sunday")}
_QUARTER = re.compile(
    r"\b(?:q([1-4])|(first|second|third|fourth|1st|2nd|3rd|4th)\s+(?:fiscal\s+)?quarter)\b",
    re.IGNORECASE,
)
_HALF = re.compile(r"\b(?:h([12])|(first|second|1st|2nd)\s+half)\b", re.IGNORECASE)
_RANK = {"first": "1", "1st": "1", "second": "2", "2nd": "2", "third": "3", "3rd": "3"}
_RANK.update({"fourth": "4", "4th": "4"})

_UNIT_GROUPS = {
    "percent": "percent percentage",
    "usd": "usd dollar dollars",
    "eur": "eur euro euros",
    "gbp": "gbp sterling",
    "e3": "thousand thousands k",
    "e6": "million millions mn",
    "e9": "billion billions bn",
    "e12": "trillion trillions",
    "km": "km kilometer kilometers kilometre kilometres",
    "mile": "mile miles mi",
    "m": "meter meters metre metres",
    "cm": "cm centimeter centimeters centimetre centimetres",
    "mm": "mm millimeter millimeters millimetre millimetres",
    "ft": "ft foot feet",
    "in": "inch inches",
    "kg": "kg kilogram kilograms",
    "g": "gram grams",
    "mg": "mg milligram milligrams",
    "lb": "lb lbs pound pounds",
    "t": "ton tons tonne tonnes",
    "l": "liter liters litre litres",
    "gal": "gallon gallons",
    "s": "second seconds",
    "min": "minute minutes",
    "h": "hour hours",
    "d": "day days",
    "wk": "week weeks",
    "mo": "month months",
    "yr": "year years",
    "decade": "decade decades",
    "century": "century centuries",
    "deg": "degree degrees",
    "degc": "celsius",
    "degf": "fahrenheit",
    "kelvin": "kelvin",
    "mph": "mph",
    "acre": "acre acres",
    "ha": "hectare hectares",
    "sq": "square",
    "cu": "cubic",
    "w": "watt watts",
    "kw": "kw kilowatt kilowatts",
    "mw": "mw megawatt megawatts",
    "gw": "gw gigawatt gigawatts",
    "v": "volt volts",
}
_UNIT_WORDS = {w: unit for unit, words in _UNIT_GROUPS.items() for w in _words(words)}
_UNIT_SYMBOLS = {"%": "percent", "$": "usd", "€": "eur", "£": "gbp"}
_UNIT_PATTERN = re.compile(
    r"(?:(?<=\s)|(?<=^)|(?<=\d))("
    + "|".join(sorted(_UNIT_WORDS, key=len, reverse=True))
    + r")(?=[\s.,;:!?)'\"]|$)",
    re.IGNORECASE,
)

_COMPARATIVES = {
    w: w
    for w in _words(
        "most least more less fewer greater smaller larger bigger higher lower longer shorter "
        "older younger newer earlier later before after prior since until till best worst "
        "better worse maximum minimum max min top bottom above below first last final "
        "increase increased increases decrease decreased decreases rise rose fall fell "
        "gain gained lose lost growth decline declined drop dropped majority minority only "
        "early late"
    )
}
_COMPARATIVES.update({"biggest": "largest", "greatest": "largest", "largest": "largest"})
_COMPARATIVES.update({"bigger": "larger", "greater": "larger"})
_NOT_SUPERLATIVE = frozenset(
    _words(
        "interest west test rest forest request honest modest suggest digest protest contest "
        "arrest harvest invest manifest inquest conquest quest chest nest guest pest vest crest "
        "zest jest behest earnest midwest southwest northwest everest budapest bucharest priest "
        "attest detest infest unrest fest tempest divest ingest congest bequest"
    )
)
_SUPERLATIVE = re.compile(r"\b[a-z]{2,}est\b")

_MEASURES = "many|much|long|old|often|far|big|large|high|tall|deep|fast|soon|early|late"
_HOW = re.compile(rf"\bhow\s+({_MEASURES})\b")
# Directions and valences: two questions that differ only in "induces" / "suppresses",
# "positively" / "negatively", "presence" / "absence", "common" / "rare" sit at cosine 0.98-0.99
# for a sentence embedder (SciFact's claim pairs). Words of one class are read as synonyms; a
# class on one side only is a conflict. Matched as word prefixes (induce, induces, induced...).
_POLAR_CLASSES = {
    "up": "increas induc promot enhanc activat encourag accelerat stimulat enabl provok generat "
    "upregulat boost amplif augment facilitat elevat potentiat",
    "down": "decreas reduc inhibit prevent suppress slow impair repress block diminish antagoni "
    "attenuat degrad downregulat abolish hinder declin remov lessen",
    "good": "improv restor repair rescu benefi protect heal",
    "bad": "worse exacerbat damag harm aggravat deteriorat",
    "pos": "positiv",
    "neg": "negativ",
    "present": "presen",
    "absent": "absen lack loss defici defect knockout",
    "common": "common frequent often usual widespread",
    "rare": "rare infrequent uncommon seldom",
    "high": "high strong good efficient reliabl accura",
    "low": "low weak poor inefficient unreliabl inaccura",
    "sensitive": "suscept vulnerab sensitiv",
    "resistant": "resist toleran insensitiv",
    "related": "relat associat correlat linked depend",
    "unrelated": "unrelat unassociat uncorrelat independ",
    "cause": "caus result",
}
_POLAR = re.compile(
    "|".join(
        rf"(?P<{name}>(?:{'|'.join(stems.split())})[a-z]*$)"
        for name, stems in _POLAR_CLASSES.items()
    )
)
# Which side of a comparison a word is on: "men more than women" / "women more than men".
_COMPARED = re.compile(
    r"\b(?:than|compared (?:to|with)|versus|vs|relative to|instead of|rather than)\s+"
    r"((?:[\w'-]+\s*){1,3})"
)

_QUESTION_KINDS = (
    (re.compile(r"\bwho(?:m)?\b"), "who"),
    (re.compile(r"\bwhose\b"), "whose"),
    (re.compile(r"\bwhen\b"), "when"),
    (re.compile(r"\bwhere\b"), "where"),
    (re.compile(r"\bwhy\b"), "why"),
    (re.compile(r"\b(?:what|which)\b"), "what"),
)
_BARE_HOW = re.compile(rf"\bhow\b(?!\s+(?:{_MEASURES})\b)")

# Capitalised words that name nothing: question words, auxiliaries, determiners, pronouns and the
# frames people put around a question ("Please tell me ...", "Could you explain ...").
_NOT_NAMES = frozenset(
    _words(
        "a an the this that these those what which who whom whose when where why how is are was "
        "were be been being do does did done has have had can could would should will shall may "
        "might must please tell me us explain describe give show list name find say know i we "
        "you he she it they in on at of for to from by with about as and or but if so then "
        "there here according quick question hi hello hey thanks thank kindly do "
        "i'd i'm id im let's lets any some didn't doesn't don't isn't wasn't aren't weren't "
        "can't couldn't wouldn't shouldn't won't hasn't haven't hadn't what's who's where's "
        "when's how's it's that's there's i'll i've"
    )
)
# Words that carry no fact of their own: question words, auxiliaries, pronouns and the frames and
# filler people wrap a question in ("Can you tell me...", "please", "quick question"). The content
# guard compares the remaining stems (Snowball, as the keyword index): any content word on one
# side only is a conflict, so a synonym swap ("located" / "situated") is a miss. That is the
# price of catching "neuroectoderm" / "notochord" (cosine 0.92) and "the National Anthem" / "the
# sign language of the National Anthem" (0.86). Only frame nouns are read as synonyms.
_FILLER = frozenset(
    analyze(
        "what which who whom whose when where why how many much do does did done doing is are was "
        "were be been being has have had having can could would should shall may might must will "
        "please tell me know like want wonder wondering explain describe give show find out "
        "quick question hi hello hey thanks thank you your yours i i'd im my we us our "
        "exactly actually just really also true right correct so some any about here there it its "
        "they them their this that these those he she his her him one ones get got let lets "
        "would wondered curious ask asking answer "
        # the stems contractions leave ("doesn't" -> "doesn"): the negation guard counts them
        "doesn isn didn don wasn aren weren couldn wouldn shouldn hasn haven hadn won can"
    )
)
# Words another guard compares after normalising them ("km" = "kilometres", "Q3" = "third
# quarter", "largest" = "biggest"): the content guard leaves them to it.
_COMPARED_ELSEWHERE = frozenset(
    analyze(
        " ".join(
            [
                *_NUMBER_WORDS,
                *_ORDINALS,
                *_MONTHS,
                *_WEEKDAYS,
                *_UNIT_WORDS,
                *_COMPARATIVES,
                *_words("quarter quarters half fiscal per cent"),
            ]
        )
    )
)
_SYNONYMS = {analyze(w)[0]: analyze(c)[0] for w, c in (("type", "kind"), ("sort", "kind"))}
_TOKEN = re.compile(r"[A-Za-z][\w'’&.-]*[A-Za-z0-9]|[A-Za-z]")
_QUOTED = re.compile(r"[\"“”«»]([^\"“”«»]{1,80})[\"“”«»]")
_FOLD = re.compile(r"[^\w%$€£]+")
_POSSESSIVE = re.compile(r"'s\b")


def fold(text: str) -> str:
    """Lowercase words separated by single spaces: what entity containment compares."""
    lower = _POSSESSIVE.sub("", text.lower().replace("’", "'"))
    return " ".join(_FOLD.sub(" ", lower).split())


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
    return sum(w in _NEGATIONS for w in words) + len(_NT.findall(lower))


def _dates(lower: str) -> tuple[frozenset[str], str]:
    """Dates found, and the text with quarters and halves removed (so "third" in "third
    quarter" is not also read as an ordinal)."""
    found: set[str] = set()
    for m in _QUARTER.finditer(lower):
        found.add("q" + (m.group(1) or _RANK[m.group(2)]))
    for m in _HALF.finditer(lower):
        found.add("h" + (m.group(1) or _RANK[m.group(2)]))
    rest = _HALF.sub(" ", _QUARTER.sub(" ", lower))
    for w in re.findall(r"[a-z]+", rest):
        if w in _MONTHS and w != "may":  # "may" is far more often the verb
            found.add(_MONTHS[w])
        elif w in _WEEKDAYS:
            found.add(_WEEKDAYS[w])
    return frozenset(found), rest


def _numbers(lower: str) -> frozenset[str]:
    found = {m.group(0).replace(",", "").lower() for m in _DIGITS.finditer(lower)}
    for w in re.findall(r"[a-z]+", lower):
        if w in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[w])
        elif w in _ORDINALS:
            found.add(_ORDINALS[w])
    return frozenset(_canonical_number(n) for n in found)


def _canonical_number(token: str) -> str:
    for suffix in ("st", "nd", "rd"):
        if token.endswith(suffix) and token[:-2].isdigit():
            return token[:-2] + "th"  # 3rd and third both read "3th"
    return token


def _units(lower: str) -> frozenset[str]:
    found = {_UNIT_WORDS[m.group(1).lower()] for m in _UNIT_PATTERN.finditer(lower)}
    found.update(unit for symbol, unit in _UNIT_SYMBOLS.items() if symbol in lower)
    if "per cent" in lower:
        found.add("percent")
    return frozenset(found)


def _comparatives(lower: str) -> frozenset[str]:
    found = set()
    for w in re.findall(r"[a-z]+", lower):
        if w in _COMPARATIVES:
            found.add(_COMPARATIVES[w])
        elif _SUPERLATIVE.fullmatch(w) and w not in _NOT_SUPERLATIVE:
            found.add(w)
    return frozenset(found)


def _polarity(lower: str) -> frozenset[str]:
    found = set()
    for w in re.findall(r"[a-z]+", lower):
        m = _POLAR.match(w)
        if m is not None and m.lastgroup is not None:
            found.add(m.lastgroup)
    return frozenset(found)


def _compared(lower: str) -> frozenset[str]:
    return frozenset(fold(m.group(1)) for m in _COMPARED.finditer(lower))


def _content(lower: str) -> frozenset[str]:
    return frozenset(
        _SYNONYMS.get(t, t)
        for t in analyze(lower)
        if t not in _FILLER and t not in _COMPARED_ELSEWHERE and not any(c.isdigit() for c in t)
    )


def _question_words(lower: str) -> frozenset[str]:
    kinds = {kind for pattern, kind in _QUESTION_KINDS if pattern.search(lower)}
    for m in _HOW.finditer(lower):  # how many = how much; how long, how old... each its own
        kinds.add("how-many" if m.group(1) in ("many", "much") else f"how-{m.group(1)}")
    if _BARE_HOW.search(lower):
        kinds.add("how")
    return frozenset(kinds)


def _entities(text: str) -> frozenset[str]:
    spans: set[str] = {fold(q) for q in _QUOTED.findall(text) if fold(q)}
    current: list[str] = []
    for token in [*_TOKEN.findall(text), ""]:
        if token and _is_name(token):
            current.append(token)
            continue
        if current:
            spans.add(fold(" ".join(current)))
        current = []
    return frozenset(s for s in spans if s)


def _is_name(token: str) -> bool:
    lower = token.lower().replace("’", "'").rstrip(".")
    if lower in _NOT_NAMES or lower in _MONTHS or lower in _WEEKDAYS:
        return False  # not a name, or a date the date guard compares
    if _QUARTER.fullmatch(lower) or _HALF.fullmatch(lower):
        return False
    if token[0].isupper():
        return True
    return any(c.isupper() for c in token[1:])  # iPhone, eBay, mRNA


def _entities_shared(a: QuestionFacts, b: QuestionFacts) -> bool:
    return all(f" {e} " in b.folded for e in a.entities) and all(
        f" {e} " in a.folded for e in b.entities
    )

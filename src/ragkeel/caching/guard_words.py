"""The word lists and patterns the semantic cache's guards read questions with (issue 14).

Data, not logic: ``caching/guards.py`` says what each guard compares and why. Every list is
lowercase; ``analyze`` is the keyword index's analyser (Snowball stems), so the content guard's
filler list is stemmed the way the questions are.
"""

from __future__ import annotations

import re

from ragkeel.storage.analyzer import analyze


def _words(text: str) -> list[str]:
    return text.split()


NEGATIONS = frozenset(
    _words("not no never none nobody nothing neither nor nowhere without cannot cant isnt")
)
NT = re.compile(r"n[’']t\b", re.IGNORECASE)  # doesn't, didn’t, won't: one negation each

NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        _words(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
}
NUMBER_WORDS.update(
    {
        w: str(10 * i)
        for i, w in enumerate(_words("thirty forty fifty sixty seventy eighty ninety"), 3)
    }
)
NUMBER_WORDS.update({"dozen": "12", "half": "0.5", "twice": "2x", "once": "1x", "thrice": "3x"})
ORDINALS = {
    w: f"{i}th"
    for i, w in enumerate(
        _words("first second third fourth fifth sixth seventh eighth ninth tenth"), 1
    )
}
DIGITS = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th|s)?\b", re.IGNORECASE)

MONTHS = {
    **{
        m: m[:3]
        for m in _words(
            "january february march april may june july august september october november december"
        )
    },
    **{m: m for m in _words("jan feb mar apr jun jul aug sep sept oct nov dec")},
}
MONTHS["sept"] = "sep"
WEEKDAYS = {d: d[:3] for d in _words("monday tuesday wednesday thursday friday saturday sunday")}
QUARTER = re.compile(
    r"\b(?:q([1-4])|(first|second|third|fourth|1st|2nd|3rd|4th)\s+(?:fiscal\s+)?quarter)\b",
    re.IGNORECASE,
)
HALF = re.compile(r"\b(?:h([12])|(first|second|1st|2nd)\s+half)\b", re.IGNORECASE)
RANK = {"first": "1", "1st": "1", "second": "2", "2nd": "2", "third": "3", "3rd": "3"}
RANK.update({"fourth": "4", "4th": "4"})

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
UNIT_WORDS = {w: unit for unit, words in _UNIT_GROUPS.items() for w in _words(words)}
UNIT_SYMBOLS = {"%": "percent", "$": "usd", "€": "eur", "£": "gbp"}
UNIT_PATTERN = re.compile(
    r"(?:(?<=\s)|(?<=^)|(?<=\d))("
    + "|".join(sorted(UNIT_WORDS, key=len, reverse=True))
    + r")(?=[\s.,;:!?)'\"]|$)",
    re.IGNORECASE,
)

COMPARATIVES = {
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
COMPARATIVES.update({"biggest": "largest", "greatest": "largest", "largest": "largest"})
COMPARATIVES.update({"bigger": "larger", "greater": "larger"})
NOT_SUPERLATIVE = frozenset(
    _words(
        "interest west test rest forest request honest modest suggest digest protest contest "
        "arrest harvest invest manifest inquest conquest quest chest nest guest pest vest crest "
        "zest jest behest earnest midwest southwest northwest everest budapest bucharest priest "
        "attest detest infest unrest fest tempest divest ingest congest bequest"
    )
)
SUPERLATIVE = re.compile(r"\b[a-z]{2,}est\b")

MEASURES = "many|much|long|old|often|far|big|large|high|tall|deep|fast|soon|early|late"
HOW = re.compile(rf"\bhow\s+({MEASURES})\b")
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
POLAR = re.compile(
    "|".join(
        rf"(?P<{name}>(?:{'|'.join(stems.split())})[a-z]*$)"
        for name, stems in _POLAR_CLASSES.items()
    )
)
# Which side of a comparison a word is on: "men more than women" / "women more than men".
COMPARED = re.compile(
    r"\b(?:than|compared (?:to|with)|versus|vs|relative to|instead of|rather than)\s+"
    r"((?:[\w'-]+\s*){1,3})"
)

QUESTION_KINDS = (
    (re.compile(r"\bwho(?:m)?\b"), "who"),
    (re.compile(r"\bwhose\b"), "whose"),
    (re.compile(r"\bwhen\b"), "when"),
    (re.compile(r"\bwhere\b"), "where"),
    (re.compile(r"\bwhy\b"), "why"),
    (re.compile(r"\b(?:what|which)\b"), "what"),
)
BARE_HOW = re.compile(rf"\bhow\b(?!\s+(?:{MEASURES})\b)")

# Capitalised words that name nothing: question words, auxiliaries, determiners, pronouns and the
# frames people put around a question ("Please tell me ...", "Could you explain ...").
NOT_NAMES = frozenset(
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
FILLER = frozenset(
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
COMPARED_ELSEWHERE = frozenset(
    analyze(
        " ".join(
            [
                *NUMBER_WORDS,
                *ORDINALS,
                *MONTHS,
                *WEEKDAYS,
                *UNIT_WORDS,
                *COMPARATIVES,
                *_words("quarter quarters half fiscal per cent"),
            ]
        )
    )
)
SYNONYMS = {analyze(w)[0]: analyze(c)[0] for w, c in (("type", "kind"), ("sort", "kind"))}
TOKEN = re.compile(r"[A-Za-z][\w'’&.-]*[A-Za-z0-9]|[A-Za-z]")
QUOTED = re.compile(r"[\"“”«»]([^\"“”«»]{1,80})[\"“”«»]")
FOLD = re.compile(r"[^\w%$€£]+")
POSSESSIVE = re.compile(r"'s\b")

"""Hard negatives for the semantic-cache sweep (issue 14): pairs of questions that must not share
a cached answer. The kinds and how each is built are listed in ``semantic_pairs``'s docstring."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable
from itertools import combinations

from semantic_pairs import COMPANIES, Pair, Question, paraphrase

MAX_PER_GROUP = 12  # natural pairs kept per paragraph / abstract (bounded, sampled)

_AUX = re.compile(
    r"\b(did|does|do|is|are|was|were|can|could|has|have|had|will|would|should)\b(?! not)"
)
_FLIPS = {
    "most": "least", "least": "most", "more": "less", "less": "more", "fewer": "more",
    "largest": "smallest", "biggest": "smallest", "smallest": "largest", "highest": "lowest",
    "lowest": "highest", "first": "last", "last": "first", "before": "after", "after": "before",
    "increase": "decrease", "increases": "decreases", "increased": "decreased",
    "decrease": "increase", "decreases": "increases", "decreased": "increased",
    "higher": "lower", "lower": "higher", "earliest": "latest", "latest": "earliest",
    "oldest": "newest", "newest": "oldest", "best": "worst", "worst": "best",
    "larger": "smaller", "smaller": "larger", "greater": "smaller", "maximum": "minimum",
    "minimum": "maximum", "longest": "shortest", "shortest": "longest", "older": "younger",
    "younger": "older", "early": "late", "late": "early",
}  # fmt: skip
_QWORDS = [
    (r"^Who\b", "When"), (r"^When\b", "Where"), (r"^Where\b", "When"), (r"^Why\b", "How"),
    (r"^How (did|does|do|is|was|are|were)\b", r"Why \1"), (r"^What (is|was)\b", r"Who \1"),
    (r"^How many\b", "How long"),
]  # fmt: skip
_NUMBER = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")
_NUMBER_WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_QUARTER = re.compile(r"\bQ([1-4]) (20\d\d)\b")
_NAME = re.compile(r"(?<!^)(?<![.?!] )\b([A-Z][\w-]+(?: [A-Z][\w-]+)*)")


def natural(questions: list[Question], rng: random.Random) -> list[Pair]:
    by_group: dict[tuple[str, str, str], list[Question]] = defaultdict(list)
    for q in questions:
        by_group[(q.source, q.split, q.group if q.source != "sec" else "all")].append(q)
    out = []
    kinds = {"xquad": "same_paragraph", "scifact": "same_abstract", "sec": "sec_pair"}
    for (source, split, _), group in sorted(by_group.items()):
        pairs = [(a, b) for a, b in combinations(group, 2) if different(a, b)]
        if source != "sec" and len(pairs) > MAX_PER_GROUP:
            pairs = rng.sample(pairs, MAX_PER_GROUP)
        out += [Pair(a.text, b.text, False, kinds[source], split, source) for a, b in pairs]
    return out


def different(a: Question, b: Question) -> bool:
    """Two questions that must not share an answer: other answers and other texts (the data
    holds a few identical questions under two ids; no cache could tell those apart)."""
    return a.equiv != b.equiv and _plain(a.text) != _plain(b.text)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w ]", " ", text.lower()).split())


def mutations(questions: list[Question], rng: random.Random) -> list[Pair]:
    names = _name_pools(questions)
    makers: dict[str, Callable[[Question], str | None]] = {
        "negation": _negate,
        "number": lambda q: _renumber(q.text, rng),
        "entity": lambda q: _rename(q, names, rng),
        "comparative": _flip,
        "question_word": _swap_qword,
        "period": lambda q: _shift_period(q.text, rng) if q.source == "sec" else None,
        "company": lambda q: _swap_company(q.text, rng) if q.source == "sec" else None,
    }
    out = []
    for q in questions:
        for kind, make in makers.items():
            mutated = make(q)
            if mutated is None or mutated == q.text:
                continue
            if rng.random() < 0.5:  # half of them on a paraphrase of the mutated question
                mutated, _ = paraphrase(mutated, rng, q.source == "scifact", mild=True)
            out.append(Pair(q.text, mutated, False, kind, q.split, q.source))
    return out


def _negate(q: Question) -> str | None:
    if q.source == "scifact":
        return f"It is not true that {q.text[:1].lower()}{q.text[1:]}"
    if re.search(r"\bnot\b|n't\b", q.text):
        return re.sub(r"\s*\bnot\b|n't\b", "", q.text, count=1)
    m = _AUX.search(q.text)
    return None if m is None else q.text[: m.end()] + " not" + q.text[m.end() :]


def _renumber(text: str, rng: random.Random) -> str | None:
    m = _NUMBER.search(text)
    if m is not None:
        raw = m.group(0).replace(",", "")
        value = float(raw)
        if 1000 <= value <= 2100 and raw.isdigit():
            new = str(int(value) + rng.choice([-3, -2, -1, 1, 2, 3]))
        elif raw.isdigit():
            new = str(int(value) + rng.choice([1, 2, 5, 10]))
        else:
            new = f"{value * 2:g}"
        return text[: m.start()] + new + text[m.end() :]
    for i, word in enumerate(_NUMBER_WORDS):
        if re.search(rf"\b{word}\b", text):
            other = _NUMBER_WORDS[(i + rng.randint(1, 3)) % len(_NUMBER_WORDS)]
            return re.sub(rf"\b{word}\b", other, text, count=1)
    return None


def _name_pools(questions: list[Question]) -> dict[tuple[str, str], list[str]]:
    pools: dict[tuple[str, str], set[str]] = defaultdict(set)
    for q in questions:
        for name in _NAME.findall(q.text):
            pools[_pool_key(q)].add(re.sub(r"^(?:The|A|An|In|On|At|Of) ", "", name))
    return {k: sorted(v) for k, v in pools.items()}


def _pool_key(q: Question) -> tuple[str, str]:
    return (q.source, q.group.split("/")[0] if q.source == "xquad" else q.split)


def _rename(q: Question, pools: dict[tuple[str, str], list[str]], rng: random.Random) -> str | None:
    found = _NAME.findall(q.text)
    if not found:
        return None
    name = rng.choice(found)
    others = [n for n in pools.get(_pool_key(q), []) if n.lower() not in q.text.lower()]
    others = [n for n in others if name.lower() not in n.lower()]  # not "X" -> "The X"
    if not others:
        return None
    return q.text.replace(name, rng.choice(others), 1)


def _flip(q: Question) -> str | None:
    for word in re.findall(r"[A-Za-z]+", q.text):
        if word.lower() in _FLIPS:
            return re.sub(rf"\b{word}\b", _FLIPS[word.lower()], q.text, count=1)
    return None


def _swap_qword(q: Question) -> str | None:
    for pattern, repl in _QWORDS:
        if re.search(pattern, q.text):
            return re.sub(pattern, repl, q.text, count=1)
    return None


def _shift_period(text: str, rng: random.Random) -> str | None:
    m = _QUARTER.search(text)
    if m is None:
        return None
    quarter, year = int(m.group(1)), int(m.group(2))
    quarter, year = rng.choice([(quarter % 4 + 1, year), (quarter, year - 1), (quarter, year + 1)])
    return text[: m.start()] + f"Q{quarter} {year}" + text[m.end() :]


def _swap_company(text: str, rng: random.Random) -> str | None:
    own = [c for c in COMPANIES if c in text]
    if not own:
        return None
    other = rng.choice([c for c in COMPANIES if c not in own])
    return text.replace(own[0], other)

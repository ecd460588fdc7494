"""Answer-text primitives shared by citation checking, extractive answers and sentence
packing: ``[n]`` citation markers, sentence splitting (and where each sentence lies in its
text), term weights."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable

from ragkeel.storage.analyzer import analyze

MAX_RANGE = 20  # "[1-3]" expands to 1, 2, 3; a wider range is read as its two ends

_NUM = r"(?:[Ss]ources?\s*)?\d+"
CITATION = re.compile(rf"\[\s*({_NUM}(?:\s*[,;\-–]\s*{_NUM})*)\s*\]")
# A sentence ends at . ! or ? (plus closing quotes/brackets and any citations right after it)
# when whitespace and a capital, digit, quote, bracket or the end of the text follow.
_END = re.compile(rf"[.!?]+[\"')]*(?:\s*{CITATION.pattern})*(?=\s+[A-Z0-9\"'(\[]|\s*$)")
# Function words beyond the keyword index's (Lucene's short) stop list: they carry no facts, so
# they neither support nor undermine a sentence, and they do not make a question term.
FUNCTION_WORDS = """
about above according after again against all also although am among any anything based
because been before being below between both can could did do does doing done down during
each either else even ever every few from further had has have having he her here hers him
his how however i its just may me might mine more most much must my myself nor now off once
only other our ours out over own per please provided same shall she should since so some
sorry source sources still than thank thanks those though through thus too under until up
upon us using very via we were what when where whether which while who whom whose why would
yes yet you your yours
"""
_FUNCTION_STEMS = frozenset(analyze(FUNCTION_WORDS))

_FIELD = re.compile(r"^[\w.\-\[\]]+:\s")  # "plans.free.burst: 20" (flattened JSON/CSV)
_LIST_ITEM = re.compile(r"^(?:[-*•]|\d{1,3}[.)])\s")
_SPACES = re.compile(r"\s+")


def content_terms(text: str) -> list[str]:
    """Analysed terms of ``text`` (lowercase, stemmed) without function words."""
    return [t for t in analyze(text) if t not in _FUNCTION_STEMS]


def citation_numbers(text: str) -> list[int]:
    """Every cited number in order of appearance (with repeats): ``[1]``, ``[1, 2]``,
    ``[1][2]``, ``[1-3]``, ``[Source 2]``."""
    numbers: list[int] = []
    for match in CITATION.finditer(text):
        for part in re.split(r"\s*[,;]\s*", match.group(1)):
            numbers.extend(_expand(part))
    return numbers


def _expand(part: str) -> list[int]:
    ends = [int(n) for n in re.findall(r"\d+", part)]
    if len(ends) == 2 and 0 < ends[1] - ends[0] <= MAX_RANGE:
        return list(range(ends[0], ends[1] + 1))
    return ends


def strip_citations(text: str) -> str:
    """``text`` without citation markers, whitespace collapsed, no space before punctuation."""
    bare = _SPACES.sub(" ", CITATION.sub(" ", text)).strip()
    return re.sub(r"\s+([.,;:!?])", r"\1", bare)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``. A blank line always starts a new one; a single line break does
    when ``_hard_break`` says so, else it is wrapping and reads as a space. Citations that
    follow a full stop stay with the sentence before them."""
    sentences: list[str] = []
    for block in _blocks(text):
        start = 0
        marker = _LIST_ITEM.match(block)  # "1. Create" is not the end of a sentence "1."
        for match in _END.finditer(block, marker.end() if marker else 0):
            sentences.append(block[start : match.end()])
            start = match.end()
        sentences.append(block[start:])
    return [s.strip() for s in sentences if s.strip()]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` in ``text`` of each of its ``split_sentences``, in order (a sentence
    joined over wrapped lines spans them). A sentence that cannot be found again (it cannot
    happen for text ``split_sentences`` read) ends the list with the rest of the text."""
    spans: list[tuple[int, int]] = []
    cursor = 0
    for sentence in split_sentences(text):
        pattern = r"\s+".join(map(re.escape, sentence.split()))
        match = re.compile(pattern).search(text, cursor)
        if match is None:
            rest = text[cursor:].strip()
            if rest:
                start = text.index(rest, cursor)
                spans.append((start, start + len(rest)))
            break
        spans.append(match.span())
        cursor = match.end()
    return spans


def idf_weights(terms: Iterable[str], docs: Collection[Collection[str]]) -> dict[str, float]:
    """BM25's idf of each term over ``docs`` (each a collection of terms): never negative, so a
    term every doc holds weighs ~0 and a rare one more."""
    n = len(docs)
    out: dict[str, float] = {}
    for term in terms:
        df = sum(term in d for d in docs)
        out[term] = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return out


def _blocks(text: str) -> list[str]:
    blocks: list[list[str]] = []
    previous = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line and blocks and previous and not _hard_break(previous, line):
            blocks[-1].append(line)
        elif line:
            blocks.append([line])
        previous = line
    return [" ".join(lines) for lines in blocks]


def _hard_break(previous: str, line: str) -> bool:
    """Does the line break between ``previous`` and ``line`` end a sentence? Yes before a list
    item, around table rows and ``key: value`` records, after a ``:``, and after a short line
    without end punctuation followed by a capital (a heading); otherwise it is wrapping."""
    heading = len(previous) < 40 and previous[-1] not in ".,;!?" and line[:1].isupper()
    return bool(
        heading
        or _LIST_ITEM.match(line)
        or "|" in line
        or "|" in previous
        or previous.endswith(":")
        or _FIELD.match(line)
        or _FIELD.match(previous)
    )

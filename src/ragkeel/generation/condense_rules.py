"""``RuleCondenser``: a follow-up question made standalone without a model (issue 15), English
and German. The default when no model answers, and the model condenser's fallback.

The earlier user turns are read oldest first, each made standalone from the one before it, so a
chain of follow-ups keeps what the conversation is about; assistant turns are not read (an
answer's words are the sources', not the user's). The last question is then looked at:

1. **Ellipsis** — it opens with "what about", "how about", "and for", "was ist mit"... (the
   cues of ``condense_words.ELLIPSIS_CUES``) followed by a fragment (at most five words, not a
   question word): the fragment replaces the one phrase of the previous question of the same
   kind (a name for a name, a number other than a year inside a name for a number: "What
   about the Panthers?" after "How many points did the Broncos score?" is "How many points
   did the Panthers score?"). With no single phrase to replace, the previous question is
   added in parentheses: "What about Denver? (Who won Super Bowl 50)".
2. **A short question** — one content word or none ("Why?", "How much?", "Is there a
   limit?"): the whole previous question is added in parentheses.
3. **A word pointing back** — a personal pronoun (it, they, him, er, sie, es, davon...; a
   possessive such as "his" or "its" only when no name comes before it in the question); a
   demonstrative (this, that, these, those, dies...) standing on its own ("why is that?",
   "after that", "when did this happen?", not "the team that won"); "there" when not
   existential ("how many live there?", not "is there"); "das" as the last word; or an
   opening "and", "also", "und", "auch" — the previous question's salient phrases that the
   question does not already name are added in parentheses: names (runs of capitalised words
   and the short numbers inside them, "Super Bowl 50", "University of Chicago"), other
   numbers, then content words, at most ``max_phrases``: "How many points did they score?
   (Broncos; Super Bowl 50)".
4. Anything else is already standalone: it is returned unchanged, character for character.

Retrieval reads the added words as more query terms; the answer prompt shows the question as
written, parentheses included. The rules cannot tell which of several names a pronoun means:
they add them all, which a model condenser (``ModelCondenser``) does not need to do.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ragkeel.generation import condense_words as words
from ragkeel.generation.condense import (
    DEFAULT_MAX_TURNS,
    Condensed,
    Condenser,
    CondenserName,
    Turn,
    recent,
)

DEFAULT_MAX_PHRASES = 6
_WORD = re.compile(r"[^\W_](?:[\w'’.\-]*[^\W_])?")
_CONNECTORS = frozenset({"of", "de", "von", "van", "der", "du", "la", "y", "and"})
_END = re.compile(r"[\s?!.？！。]*$")


@dataclass(frozen=True, slots=True)
class _Word:
    text: str
    start: int
    end: int
    joined: bool  # only spaces between it and the word before (a name may run on)

    @property
    def lower(self) -> str:
        return self.text.lower()

    @property
    def bare(self) -> str:
        """Without a possessive ("Broncos'", "Manning's")."""
        return re.sub(r"['’]s?$", "", self.text)


class RuleCondenser:
    """The rules of the module docstring over the last ``max_turns`` turns."""

    def __init__(
        self, *, max_turns: int = DEFAULT_MAX_TURNS, max_phrases: int = DEFAULT_MAX_PHRASES
    ) -> None:
        self.max_turns = max_turns
        self.max_phrases = max_phrases

    @property
    def name(self) -> CondenserName:
        return "rules"

    def offline(self) -> Condenser:
        return self

    def condense(
        self, question: str, history: Sequence[Turn], *, tenant: str | None = None
    ) -> Condensed:
        started = time.perf_counter()
        turns = recent(history, self.max_turns)
        previous: str | None = None
        for turn in turns:
            if turn.role == "user":
                text = turn.text.strip()
                previous = text if previous is None else self.resolve(text, previous)
        out = question if previous is None else self.resolve(question, previous)
        ms = (time.perf_counter() - started) * 1000
        return Condensed(question, out, "rules", len(turns), ms=ms)

    def resolve(self, question: str, previous: str) -> str:
        """``question`` made standalone from the ``previous`` (standalone) question."""
        found = _words(question)
        if not found or not previous.strip():
            return question
        rest = _after_cue(question, found)
        if rest is not None and _elliptic(rest):
            return _swap(previous, rest) or _with_context(question, _core(previous))
        if _content_words(found) <= 1:
            return _with_context(question, _core(previous))
        if not _points_back(found):
            return question
        asked = {w.bare.lower() for w in found}
        phrases = [p for p in salient(previous) if not set(p.lower().split()) <= asked]
        if not phrases:
            return question
        return _with_context(question, "; ".join(phrases[: self.max_phrases]))


def salient(text: str) -> list[str]:
    """What ``text`` is about, most telling first: names, numbers, content words (each once)."""
    found = _words(text)
    runs = _names(found)
    in_runs = {i for run in runs for i in range(run[0], run[1])}
    names = [" ".join(w.bare for w in found[s:e]) for s, e in runs]
    numbers = [w.text for i, w in enumerate(found) if i not in in_runs and _is_number(w.text)]
    content = [
        w.bare
        for i, w in enumerate(found)
        if i not in in_runs and _is_content(w) and not _is_number(w.text)
    ]
    seen: set[str] = set()
    out = []
    for phrase in (*names, *numbers, *content):
        if phrase.lower() not in seen:
            seen.add(phrase.lower())
            out.append(phrase)
    return out


def _words(text: str) -> list[_Word]:
    out: list[_Word] = []
    for m in _WORD.finditer(text):
        joined = bool(out) and not text[out[-1].end : m.start()].strip()
        out.append(_Word(m.group(), m.start(), m.end(), joined))
    return out


def _after_cue(question: str, found: list[_Word]) -> str | None:
    """What follows an ellipsis cue at the start of ``question`` ("" when nothing does); None
    when it does not open with one."""
    lowered = [w.lower for w in found]
    for cue in words.ELLIPSIS_CUES:
        parts = cue.split()
        if lowered[: len(parts)] == parts:
            if len(found) == len(parts):
                return ""
            return _END.sub("", question[found[len(parts)].start :]).strip()
    return None


def _elliptic(rest: str) -> bool:
    """Whether what follows a cue is a fragment ("the Panthers", "2016"), not a question of
    its own ("what battle did they lose": then the cue only continues the conversation)."""
    said = _words(rest)
    return not said or (said[0].lower not in words.QUESTION_WORDS and len(said) <= 5)


def _points_back(found: list[_Word]) -> bool:
    lowered = [w.lower for w in found]
    if lowered[0] in words.CONTINUATION_CUES:
        return True
    named = False  # a name earlier in the question: its possessives refer to it
    for i, word in enumerate(lowered):
        if word in words.POINTERS and not (named and word in words.POSSESSIVES):
            return True
        if word in words.DEMONSTRATIVES and _demonstrative(lowered, i):
            return True
        if word == words.THERE and not _existential(lowered, i):
            return True
        if word in words.FINAL_POINTERS and i == len(lowered) - 1:
            return True
        named = named or (i > 0 and _is_name(found[i].text))
    return False


def _demonstrative(lowered: list[str], i: int) -> bool:
    """Whether "this"/"that"... at ``i`` points back (German "dies..." always does)."""
    if lowered[i].startswith("dies"):
        return True
    before = lowered[i - 1] if i > 0 else None
    after = lowered[i + 1] if i + 1 < len(lowered) else None
    verbs = words.AUXILIARIES | words.LIGHT_VERBS
    return (
        before is None
        or after is None
        or before in verbs
        or before in words.PREPOSITIONS
        or before in words.QUESTION_WORDS
    )


def _existential(lowered: list[str], i: int) -> bool:
    after = lowered[i + 1] if i + 1 < len(lowered) else None
    before = lowered[i - 1] if i > 0 else None
    return after in words.BE or before in words.BE


def _names(found: list[_Word]) -> list[tuple[int, int]]:
    """[start, end) index runs of capitalised words (with numbers and connectors inside)."""
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(found):
        if not _starts_name(found, i):
            i += 1
            continue
        end = i + 1
        while end < len(found) and found[end].joined:
            text = found[end].text
            if _is_name(text) or (
                _is_number(text) and len(text) < 4
            ):  # not a year: "Super Bowl 50"
                end += 1
            elif (
                text.lower() in _CONNECTORS
                and end + 1 < len(found)
                and found[end + 1].joined
                and _is_name(found[end + 1].text)
            ):
                end += 2
            else:
                break
        runs.append((i, end))
        i = end
    return runs


def _starts_name(found: list[_Word], i: int) -> bool:
    """A capitalised word that is not a function word ("How", "What's", "Wie", "The"), or an
    acronym even if it spells one ("NO" for nitric oxide, "US")."""
    text = found[i].bare
    acronym = len(text) > 1 and text.isupper()
    return _is_name(text) and (acronym or text.lower() not in words.NOT_CONTENT)


def _is_name(text: str) -> bool:
    return text[0].isupper() and text.lower() not in {"i", "ich"}


def _is_number(text: str) -> bool:
    return any(c.isdigit() for c in text)


def _is_content(word: _Word) -> bool:
    return len(word.bare) >= 3 and word.bare.lower() not in words.NOT_CONTENT


def _content_words(found: list[_Word]) -> int:
    return sum(1 for w in found if _is_content(w) or _is_number(w.text))


def _swap(previous: str, rest: str) -> str | None:
    """``previous`` with its one phrase of ``rest``'s kind replaced by ``rest``; None when
    ``rest`` is empty, of no kind, or ``previous`` has no single phrase of its kind."""
    said = _words(rest)
    if not said:
        return None
    found = _words(previous)
    runs = _names(found)
    if any(_is_name(w.text) for w in said if w.lower not in words.ARTICLES):
        spans = [(found[s].start, found[e - 1].end) for s, e in runs]
    elif any(_is_number(w.text) for w in said):
        in_runs = {i for run in runs for i in range(run[0], run[1])}
        spans = [
            (w.start, w.end) for i, w in enumerate(found) if i not in in_runs and _is_number(w.text)
        ]
    else:
        return None
    if len(spans) != 1:
        return None
    start, end = spans[0]
    head = previous[:start]
    article = said[0].lower if said[0].lower in words.ARTICLES else None
    if article is not None and head.lower().endswith(article + " "):
        head = head[: -len(article) - 1]  # "the Broncos" -> "the Panthers", not "the the"
    return head + rest + previous[end:].rstrip() or None


def _core(question: str) -> str:
    return _END.sub("", question.strip())


def _with_context(question: str, context: str) -> str:
    """``question`` with ``context`` in parentheses before its closing punctuation."""
    stripped = question.strip()
    core = _core(stripped)
    end = stripped[len(core) :].strip()
    return f"{core} ({context}){end}"


# -- checking a model's rewrite -----------------------------------------------------------------

NEW_WORDS_MAX_SHARE = 0.5  # of a rewrite's content words that the conversation never said
KEPT_MIN_SHARE = 0.5  # of the question's content words the rewrite must keep


def content_keys(text: str) -> frozenset[str]:
    """``text``'s content words and numbers, each as its lowercase first five letters after a
    plural "s" (a crude stem both languages share: "rotate"/"rotating", "key"/"keys",
    "Spieler"/"Spielern")."""
    return frozenset(
        _key(w.bare.lower()) for w in _words(text) if _is_content(w) or _is_number(w.text)
    )


def _key(word: str) -> str:
    return (word[:-1] if len(word) > 3 and word.endswith("s") else word)[:5]


def on_topic(rewrite: str, question: str, history: Sequence[Turn]) -> bool:
    """Whether a model's ``rewrite`` of ``question`` can stand in for it: it keeps at least
    ``KEPT_MIN_SHARE`` of the question's content words (a rewrite adds what the question points
    to; it does not swap the question for the previous one or another one) and at most
    ``NEW_WORDS_MAX_SHARE`` of its content words are new to the conversation (``history``, user
    and assistant turns, and the question) — not an answer, nor facts the model made up. The
    local 1.5B model does all of these (docs/benchmarks.md, "Issue 15: multi-turn")."""
    said = content_keys(rewrite)
    if not said:
        return True  # nothing to judge by ("Why?" -> "Why?")
    asked = content_keys(question)
    if len(said & asked) < KEPT_MIN_SHARE * len(asked):
        return False
    known = asked.union(*(content_keys(t.text) for t in history))
    return len(said - known) <= NEW_WORDS_MAX_SHARE * len(said)

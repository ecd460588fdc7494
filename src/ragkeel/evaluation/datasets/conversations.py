"""Multi-turn conversations built from a SQuAD-style file (XQuAD) for the condensation
evaluation (issue 15): a first question, then one or two follow-ups written with a pronoun or an
ellipsis, each follow-up's standalone form a real question of the data set with its paragraph
and answers. Deterministic: the same file, count and seed give the same conversations.

The follow-ups are written by rules, not by people (say so wherever the figures are quoted):

1. A paragraph's questions are paired: the first question Q1 and a later one Q2 that shares a
   name with it ("the Broncos", "John Elway", "Super Bowl 50": a run of capitalised words that
   both questions contain), asks something else (another answer) and is not a near copy.
2. Q2 is rewritten without the shared name:
   - **ellipsis** when the name ends Q2 after a preposition: the phrase is dropped and "And"
     opens the question ("Who is the General Manager for the Broncos?" -> "And who is the
     General Manager?");
   - **pronoun** otherwise: the name becomes "they"/"them"/"their" (a plural team name after
     "the"), "he"/"him"/"his" or "she"/"her" (a person: two or three plain capitalised words,
     or a surname, in a paragraph that uses that pronoun), else "it"/"its"; subject, object
     or possessive by its place in the question.
3. A second follow-up is added when a third question shares a name with Q1 the same way; its
   history is Q1 and the first follow-up *as asked* (the rewritten text).

``write_cases`` writes the follow-ups as ragkeel test-set lines (``testset.py``, with
``history``), and, as the upper bound, the same cases asked standalone (no history, the
original question). Run it as::

    python -m ragkeel.evaluation.datasets.conversations XQUAD.json OUT.jsonl STANDALONE.jsonl
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from ragkeel.evaluation.cases import EvalCase
from ragkeel.evaluation.datasets.loaders import squad_paragraph_id
from ragkeel.evaluation.datasets.testset import case_to_json

DEFAULT_CONVERSATIONS = 40
DEFAULT_SEED = 15
MAX_PER_ARTICLE = 2  # spread the conversations over the articles

_POSSESSIVE = re.compile(r"['’]s?(?!\w)")  # "Manning's", "the Panthers'"
_WORD = re.compile(r"[A-Za-z0-9][\w\-–.]*[A-Za-z0-9]|[A-Za-z0-9]")


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_PREPOSITIONS = _set("for of in at by to from during with against about")
_DO = _set("did does do has have had can could will would should")
_SUBJECT_AFTER = _DO | _set("was were is are what which who")
_OPENERS = _SUBJECT_AFTER | _PREPOSITIONS | _set("when where why how whom whose")
_DETERMINERS = _set(
    "a an its his her their our my your this that these those first second last new old same "
    "other every each some any"
)
_NOT_PERSON = _set(
    """
    bowl super university college school river church party war empire company game
    championship conference league award act street park city state kingdom republic
    cup series museum hospital station bridge tower house island mountain lake sea ocean
    valley council court parliament army navy force dynasty revolution treaty law theory
    """
)
_STOP = _set(
    """
    a an the of in on at for to by from with and or is was were are be been do does did what
    which who whom whose when where why how many much that this these those it its they their
    he his she her
    """
)


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    text: str
    answers: tuple[str, ...]
    doc_ids: tuple[str, ...]  # the relevant documents (an XQuAD paragraph, SciFact abstracts)


@dataclass(frozen=True, slots=True)
class FollowUp:
    asked: str  # as the user writes it (pronoun or ellipsis)
    original: Question  # its standalone form: a real question of the data set
    kind: str  # "pronoun" or "ellipsis"


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    first: Question
    follow_ups: tuple[FollowUp, ...]


def build_conversations(
    path: Path, *, count: int = DEFAULT_CONVERSATIONS, seed: int = DEFAULT_SEED
) -> list[Conversation]:
    """Up to ``count`` conversations from the SQuAD-style file at ``path``."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paragraphs: list[tuple[int, list[Question], str]] = []
    for a, article in enumerate(data):
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = squad_paragraph_id(article["title"], p)
            questions = [
                _question(qa, doc_id)
                for qa in paragraph["qas"]
                if qa.get("answers") and qa["question"].strip().endswith("?")
            ]
            paragraphs.append((a, questions, paragraph["context"]))
    random.Random(seed).shuffle(paragraphs)
    per_article: dict[int, int] = {}
    out: list[Conversation] = []
    for article, questions, context in paragraphs:
        if len(out) >= count or per_article.get(article, 0) >= MAX_PER_ARTICLE:
            continue
        conversation = _conversation(f"conv{len(out) + 1:02d}", questions, context)
        if conversation is not None:
            out.append(conversation)
            per_article[article] = per_article.get(article, 0) + 1
    return out


def follow_up_cases(
    conversations: Sequence[Conversation], *, judge_first: bool = False
) -> list[EvalCase]:
    """One case per follow-up: its earlier user questions as asked, its references;
    ``judge_first``: the first question's documents are judged too, as not relevant (grade 0:
    a sampled corpus keeps them, the metrics ignore them)."""
    cases: list[EvalCase] = []
    for conv in conversations:
        history = [conv.first.text]
        for turn, follow in enumerate(conv.follow_ups, start=2):
            q = follow.original
            cases.append(
                EvalCase(
                    id=f"{conv.id}-t{turn}",
                    question=follow.asked,
                    reference_answers=q.answers,
                    relevant_doc_ids=q.doc_ids,
                    qrels=_judged(q, conv.first) if judge_first else {},
                    tags=("multiturn", follow.kind, f"turn{turn}"),
                    history=tuple(history),
                )
            )
            history.append(follow.asked)
    return cases


def standalone_cases(cases: Sequence[EvalCase], originals: dict[str, str]) -> list[EvalCase]:
    """``cases`` asked as the data set's own questions, without history (the upper bound)."""
    return [
        replace(c, question=originals[c.id], history=(), tags=(*c.tags, "standalone"))
        for c in cases
    ]


def write_cases(squad: Path, out: Path, standalone_out: Path, *, count: int, seed: int) -> int:
    """Write the follow-ups (``out``) and their standalone forms (``standalone_out``) as
    test-set JSONL with a provenance header; returns how many follow-ups."""
    conversations = build_conversations(squad, count=count, seed=seed)
    cases = follow_up_cases(conversations)
    originals = {
        f"{conv.id}-t{turn}": f.original.text
        for conv in conversations
        for turn, f in enumerate(conv.follow_ups, start=2)
    }
    header = (
        f"# Multi-turn follow-ups (issue 15): {len(conversations)} conversations, {len(cases)} "
        f"follow-ups, built from {squad.name} (XQuAD, CC BY-SA 4.0: Artetxe et al. 2020;\n"
        "# Rajpurkar et al. 2016) by ragkeel.evaluation.datasets.conversations "
        f"(count {count}, seed {seed}).\n"
        "# The follow-ups are rule-written (a shared name replaced by a pronoun, or dropped with\n"
        "# its preposition after 'And'); each one's standalone form is a real XQuAD question,\n"
        "# with its paragraph and answers. Regenerate, never edit by hand.\n"
    )
    write_case_files(out, standalone_out, header, cases, originals)
    return len(cases)


def write_case_files(
    out: Path,
    standalone_out: Path,
    header: str,
    cases: Sequence[EvalCase],
    originals: dict[str, str],
) -> None:
    """Write ``cases`` (``out``) and the same cases asked standalone (``standalone_out``,
    ``originals``: each case's own question, ``standalone_cases``) as test-set JSONL, each file
    opening with ``header`` (its provenance). Every conversation set writes its files here."""
    for path, rows in ((out, cases), (standalone_out, standalone_cases(cases, originals))):
        lines = [json.dumps(case_to_json(c), ensure_ascii=False) for c in rows]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")


def _judged(q: Question, first: Question) -> dict[str, int]:
    return {d: 0 for d in first.doc_ids} | {d: 1 for d in q.doc_ids}


def _question(qa: dict[str, Any], doc_id: str) -> Question:
    answers = tuple(dict.fromkeys(a["text"].strip() for a in qa["answers"] if a["text"].strip()))
    return Question(qa["id"], " ".join(qa["question"].split()), answers, (doc_id,))


def _conversation(cid: str, questions: list[Question], context: str) -> Conversation | None:
    for i, first in enumerate(questions):
        follows: list[FollowUp] = []
        used = [first]
        for later in questions[i + 1 :]:
            if any(not _distinct(later, q) for q in used):
                continue
            follow = rewrite(later, first.text, f"{first.text} {context}")
            if follow is not None:
                follows.append(follow)
                used.append(later)
            if len(follows) == 2:
                break
        if follows:
            return Conversation(cid, first, tuple(follows))
    return None


def _distinct(a: Question, b: Question) -> bool:
    """Another answer, and not a rewording of the same question."""
    if {x.lower() for x in a.answers} & {x.lower() for x in b.answers}:
        return False
    wa, wb = _content(a.text), _content(b.text)
    return len(wa & wb) / max(1, len(wa | wb)) < 0.5


def _content(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP}


def rewrite(
    q: Question, first: str, context: str, keep: Callable[[str], bool] = lambda name: True
) -> FollowUp | None:
    """``q`` without the longest name it shares with ``first`` (among those ``keep`` accepts);
    None when they share none or what is left would not be a question. ``context``: the text
    the pronoun's person or number is read from."""
    for start, end in sorted(names_in(q.text), key=lambda s: s[0] - s[1]):  # longest first
        name = q.text[start:end]
        if not keep(name) or not re.search(
            rf"(?<!\w){re.escape(name)}(?!\w)", first
        ):  # as written: a name
            continue
        if start > 3 and q.text[start - 4 : start].lower() == "the ":
            start -= 4
        if not _whole_phrase(q.text, start, end):
            continue
        asked = _ellipsis(q.text, start, end) or _pronoun(q.text, start, end, name, context)
        if asked is None or name.lower() in asked.lower() or len(_content(asked)) < 1:
            return None
        kind = "ellipsis" if asked.startswith("And ") else "pronoun"
        return FollowUp(asked, q, kind)
    return None


def _whole_phrase(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is a noun phrase of its own, not a modifier ("an Italian
    law", "the Kuznets curve", "its Victoria plant", "the first Doctor")."""
    if text[start - 1 : start] in ("(", "-", "/") or text[end : end + 1] in (")", "-", "+", "/"):
        return False  # an abbreviation in parentheses, part of a compound: "(HSC)", "α-MyHC"
    before = text[:start].split()
    if before and before[-1].lower() in _DETERMINERS:
        return False
    if _POSSESSIVE.match(text[end:]):  # "the Panthers' defense": a determiner of its own
        return True
    after = text[end:].split()
    nxt = after[0].strip("?,.;:") if after else ""
    if not nxt or not nxt[0].islower() or nxt in _STOP or nxt in _PREPOSITIONS | _DO:
        return True
    if text[start : start + 4].lower() == "the " and text[start + 4 : end].isupper():
        return False  # "the CPI scale", "the UK government"
    verb = len(nxt) > 1 and not (nxt.endswith("s") and not nxt.endswith("ss"))  # not "elections"
    return bool(before) and before[-1].lower() in _DO and verb  # "did (the) Broncos score"


def names_in(text: str) -> list[tuple[int, int]]:
    """Character spans of runs of capitalised words (numbers inside), the opener excluded."""
    spans: list[tuple[int, int]] = []
    run: tuple[int, int] | None = None
    for i, m in enumerate(_WORD.finditer(text)):
        word = m.group()
        named = word[0].isupper() and not (i == 0 and word.lower() in _OPENERS)
        if named or (run is not None and word.isdigit()):
            run = (run[0] if run else m.start(), m.end())
            continue
        if run is not None:
            spans.append(run)
        run = None
    if run is not None:
        spans.append(run)
    return [(s + 4, e) if text[s : s + 4] == "The " and e > s + 4 else (s, e) for s, e in spans]


def _ellipsis(text: str, start: int, end: int) -> str | None:
    """ "And <question without 'prep name'>?" when the name ends the question after a
    preposition."""
    if text[end:].strip() not in ("?", ""):
        return None
    before = text[:start].rstrip()
    prep = before.rsplit(" ", 1)[-1].lower()
    if prep not in _PREPOSITIONS:
        return None
    rest = before[: len(before) - len(prep)].rstrip(" ,")
    if len(_content(rest)) < 2:
        return None
    return "And " + rest[0].lower() + rest[1:] + "?"


def _pronoun(text: str, start: int, end: int, name: str, context: str) -> str | None:
    after = text[end:]
    possessive = _POSSESSIVE.match(after)
    if possessive:
        after = after[possessive.end() :]
    before = text[:start]
    previous = before.rstrip().rsplit(" ", 1)[-1].lower() if before.strip() else ""
    kind = _pronoun_kind(text, start, name, context)
    forms = {
        "they": ("they", "them", "their"),
        "he": ("he", "him", "his"),
        "she": ("she", "her", "her"),
        "it": ("it", "it", "its"),
    }[kind]
    if possessive:
        word = forms[2]
    elif not before.strip() or previous in _SUBJECT_AFTER:
        word = forms[0]
    else:
        word = forms[1]
    if not before.strip():
        word = word.capitalize()
    return before + word + after


def _pronoun_kind(text: str, start: int, name: str, context: str) -> str:
    words = name.split()
    if text[max(0, start - 4) : start].lower() == "the " or text[start : start + 4] == "the ":
        last = words[-1].lower()
        if last.endswith("s") and not last.endswith(("ss", "us")):
            return "they"
        return "it"
    plain = all(w.isalpha() and w[0].isupper() and w[1:].islower() for w in words)
    if not plain or len(words) > 3 or any(w.lower() in _NOT_PERSON for w in words):
        return "it"
    surname = len(words) == 1 and re.search(rf"\b[A-Z][a-z]*\.? {re.escape(name)}\b", context)
    if len(words) == 1 and not surname:
        return "it"
    low = f" {context.lower()} "
    he = sum(low.count(f" {w} ") for w in ("he", "his", "him"))
    she = sum(low.count(f" {w} ") for w in ("she", "her", "hers"))
    if he == she == 0:
        return "it"
    return "he" if he >= she else "she"


def main(argv: Sequence[str] | None = None) -> int:
    write = partial(write_cases, count=DEFAULT_CONVERSATIONS, seed=DEFAULT_SEED)
    return command_line(argv, __doc__, write)


def command_line(
    argv: Sequence[str] | None, doc: str, write: Callable[[Path, Path, Path], int]
) -> int:
    """A conversation set's command: ``SOURCE OUT.jsonl STANDALONE.jsonl`` (``argv``; None:
    the process's), written by ``write`` (it returns how many follow-ups); without three
    arguments, the usage (``doc``'s last line: a module docstring's example) and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 3:
        print(doc.strip().rsplit("\n", 1)[-1].strip(), file=sys.stderr)
        return 2
    source, out, standalone = (Path(a) for a in args)
    n = write(source, out, standalone)
    print(f"{n} follow-ups -> {out}, {standalone}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Two-turn conversations built from a BEIR claim set (SciFact) for the condensation
evaluation (issue 15): a first claim, then a follow-up claim that names the same gene, protein
or acronym ("ALDH1", "IL-6", "BRCA1") and is rewritten with a pronoun for it, the rules of
``conversations.rewrite`` ("ALDH1 expression is associated with ..." -> "Its expression is
associated with ..."). The follow-up's standalone form is a real claim of the split with its
judged abstracts; the first claim's abstracts are none of them, and are judged too, as not
relevant (grade 0), so a sampled corpus keeps them as distractors: carrying the first claim's
words into the follow-up can retrieve them instead.

A harder retrieval test than XQuAD's: thousands of abstracts, and the name is often the only
word that ties a claim to its abstracts. Deterministic for the same folder, count and seed::

    python -m ragkeel.evaluation.datasets.claim_conversations SCIFACT_DIR OUT.jsonl STANDALONE.jsonl
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from ragkeel.evaluation.datasets.beir import load_beir
from ragkeel.evaluation.datasets.conversations import (
    Conversation,
    Question,
    command_line,
    follow_up_cases,
    names_in,
    rewrite,
    write_case_files,
)

DEFAULT_CONVERSATIONS = 30
DEFAULT_SEED = 15
_TECHNICAL = re.compile(r"[A-Z].*[A-Z0-9]|\d")  # two capitals or a digit: ALDH1, IL-6, PrP


def technical(name: str) -> bool:
    """A gene, protein or acronym rather than a capitalised word ("Cancer", "Patients")."""
    return any(_TECHNICAL.search(word) for word in name.split())


def build_claim_conversations(
    folder: Path, *, count: int = DEFAULT_CONVERSATIONS, seed: int = DEFAULT_SEED
) -> list[Conversation]:
    """Up to ``count`` conversations: a follow-up from the test split, its first claim from
    either split."""
    test, train = load_beir(folder, "test"), load_beir(folder, "train")
    claims = {**train.queries, **test.queries}
    docs = {
        qid: tuple(sorted(d for d, g in rel.items() if g > 0)) for qid, rel in test.qrels.items()
    }
    docs |= {
        qid: tuple(sorted(d for d, g in rel.items() if g > 0)) for qid, rel in train.qrels.items()
    }
    by_name: dict[str, list[str]] = {}
    for qid in sorted(claims, key=_order):
        for start, end in names_in(claims[qid]):
            by_name.setdefault(claims[qid][start:end], []).append(qid)
    later = sorted(test.queries, key=_order)
    random.Random(seed).shuffle(later)
    out: list[Conversation] = []
    for qid in later:
        if len(out) >= count:
            break
        q = Question(qid, claims[qid], (), docs.get(qid, ()))
        for first_id in _sharing(claims[qid], qid, by_name):
            first = Question(first_id, claims[first_id], (), docs.get(first_id, ()))
            if first_id == qid or not q.doc_ids or set(first.doc_ids) & set(q.doc_ids):
                continue
            follow = rewrite(q, first.text, "", keep=technical)
            if follow is not None:
                out.append(Conversation(f"sf{len(out) + 1:02d}", first, (follow,)))
                break
    return out


def _sharing(text: str, qid: str, by_name: dict[str, list[str]]) -> list[str]:
    """Other claims naming one of this claim's technical names, in id order."""
    found = {
        other
        for start, end in names_in(text)
        if technical(text[start:end])
        for other in by_name.get(text[start:end], [])
        if other != qid
    }
    return sorted(found, key=_order)


def _order(qid: str) -> tuple[int, str]:
    return (int(qid), qid) if qid.isdigit() else (0, qid)


def write_claim_cases(
    folder: Path, out: Path, standalone_out: Path, *, count: int, seed: int
) -> int:
    """Write the follow-ups and their standalone forms as test-set JSONL; how many."""
    conversations = build_claim_conversations(folder, count=count, seed=seed)
    cases = follow_up_cases(conversations, judge_first=True)
    originals = {f"{c.id}-t2": c.follow_ups[0].original.text for c in conversations}
    header = (
        f"# Multi-turn follow-ups (issue 15): {len(cases)} two-turn conversations of SciFact "
        "claims (queries CC BY 4.0, Wadden et al. 2020),\n# built by "
        f"ragkeel.evaluation.datasets.claim_conversations (count {count}, seed {seed}). The\n"
        "# follow-ups are rule-written (the name both claims share replaced by a pronoun); each\n"
        "# one's standalone form is a real test claim with its judged abstracts (qrels 1), the\n"
        "# first claim's abstracts judged 0. Regenerate, never edit by hand.\n"
    )
    write_case_files(out, standalone_out, header, cases, originals)
    return len(cases)


def main(argv: Sequence[str] | None = None) -> int:
    write = partial(write_claim_cases, count=DEFAULT_CONVERSATIONS, seed=DEFAULT_SEED)
    return command_line(argv, __doc__, write)


if __name__ == "__main__":
    raise SystemExit(main())

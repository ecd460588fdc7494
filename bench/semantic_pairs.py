"""Question pairs for the semantic-cache sweep (issue 14), built from the evaluation data.

No paraphrase corpus ships in ../shared/datasets and the workplace is offline, so the positives
are *rule-written* paraphrases (``paraphrase``): 1-3 of the rules below applied at random to a
real question. They are varied on purpose, including rewrites the guards cannot accept (a
changed question frame "How many" -> "What is the number of", a keyword-style query): those
count against recall, so the figure is not flattered. Recall on human paraphrases may differ.

    rule         what it does
    frame        wraps the question: "Can you tell me ...", "I'd like to know ...", "Is it true that ..."
    politeness   adds "please", "thanks", "quick question:", filler ("exactly", "actually")
    case_punct   lowercases, drops or doubles the question mark, adds a trailing space or comma
    synonym      swaps frame words for synonyms: what kind/type/sort, which/what, biggest/largest,
                 begin/start, located/situated, contractions (what's, didn't)
    reorder      moves a trailing prepositional phrase to the front ("In 2015, how many ...")
    reword       rewords the frame: "How many X" -> "What is the number of X" (changes the
                 question word: the guard rejects), "What is the name of" -> "What is ... called"
    keywords     a telegraphic query: content words only ("panthers defense points surrender")

Negatives, labelled by kind (``natural`` kinds are real different questions; the others are
one-fact mutations written by rule, half of them applied to a paraphrase):

    same_paragraph  (natural) two XQuAD questions about one paragraph with different answers
                    (pairs with the same answer are left out: they may be paraphrases)
    same_abstract   (natural) two SciFact claims citing the same abstract
    sec_pair        (natural) two SEC questions (other company or other topic)
    nearest         (natural) each question's most similar other question of its split
                    (different answer), found after embedding by the sweep itself
    negation, number, entity, comparative, question_word, period, company  (mutations)

``human_paraphrases``: the only human-written rewordings the data holds (the SEC sample asks
about cash flow and legal contingencies once per company, in other words each time); with the
company made the same, 16 pairs, used to report recall only, never to tune.
"""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass, field
from itertools import combinations

from common import DATASETS

NATURAL = ("same_paragraph", "same_abstract", "sec_pair", "nearest")
COMPANIES = ("Apple", "Amazon", "Intel", "Microsoft", "NVIDIA")
HELD_OUT_COMPANIES = ("Intel", "Amazon")


@dataclass(frozen=True)
class Question:
    qid: str
    text: str
    split: str  # "train" | "test"
    source: str  # xquad | scifact | sec
    group: str  # paragraph / abstract / company: where the natural negatives come from
    answer: str  # equivalence: two questions with one group and one answer are the same

    @property
    def equiv(self) -> tuple[str, str]:
        """Questions with one ``equiv`` have one answer (same paragraph and answer text)."""
        return (self.group, self.answer)


@dataclass
class Pair:
    a: str
    b: str
    positive: bool
    kind: str  # paraphrase rule list for positives, negative kind otherwise
    split: str
    source: str
    extra: dict[str, float] = field(default_factory=dict)


def load_questions() -> list[Question]:
    return _xquad() + _scifact() + _sec()


def _xquad() -> list[Question]:
    data = json.loads((DATASETS / "xquad-en" / "xquad.en.json").read_text())
    out = []
    for i, article in enumerate(data["data"]):
        split = "test" if i % 3 == 0 else "train"  # every third article held out
        for j, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                answer = _norm_answer(qa["answers"][0]["text"])
                out.append(Question(qa["id"], qa["question"], split, "xquad", f"{i}/{j}", answer))
    return out


def _scifact() -> list[Question]:
    root = DATASETS / "scifact"
    split_of = {}
    for split in ("train", "test"):
        with (root / "qrels" / f"{split}.tsv").open() as f:
            for row in csv.DictReader(f, delimiter="\t"):
                split_of[row["query-id"]] = split
    out = []
    for line in (root / "queries.jsonl").read_text().splitlines():
        q = json.loads(line)
        docs = sorted(q.get("metadata") or {})
        if q["_id"] in split_of:
            group = docs[0] if docs else f"none-{q['_id']}"
            out.append(
                Question(q["_id"], q["text"], split_of[q["_id"]], "scifact", group, q["_id"])
            )
    return out


def _sec() -> list[Question]:
    with (DATASETS / "sec-10q-sample" / "qna.csv").open() as f:
        rows = list(csv.DictReader(f))
    out = []
    for i, row in enumerate(rows):
        company = next((c for c in COMPANIES if c.lower() in row["Question"].lower()), "?")
        split = "test" if company in HELD_OUT_COMPANIES else "train"
        out.append(Question(f"sec{i}", row["Question"], split, "sec", company, f"sec{i}"))
    return out


def _norm_answer(text: str) -> str:
    return " ".join(re.sub(r"[^\w ]", " ", text.lower()).replace(" the ", " ").split())


# ---- positives: rule-written paraphrases -------------------------------------------------------

_FRAMES = (
    "Can you tell me {q}",
    "I'd like to know {q}",
    "Do you know {q}",
    "Please tell me: {q}",
    "I was wondering, {q}",
    "Quick question - {q}",
    "Could you find out {q}",
)
_CLAIM_FRAMES = ("Is it true that {q}?", "Is there evidence that {q}?", "I read that {q} - right?")
_SYNONYMS = [
    (r"\bWhat type of\b", "What kind of"), (r"\bWhat kind of\b", "What sort of"),
    (r"\bWhich\b", "What"), (r"\bWhat is\b", "What's"), (r"\bWho is\b", "Who's"),
    (r"\bdid not\b", "didn't"), (r"\bdoes not\b", "doesn't"), (r"\bis not\b", "isn't"),
    (r"\blargest\b", "biggest"), (r"\bbegin\b", "start"), (r"\bbegan\b", "started"),
    (r"\blocated\b", "situated"), (r"\bpurchased\b", "bought"), (r"\bcreated\b", "made"),
    (r"\bprimary\b", "main"), (r"\bfamous\b", "well known"), (r"\bapproximately\b", "about"),
    (r"\bcommonly\b", "often"), (r"\bfrequently\b", "often"), (r"\breceived\b", "got"),
    (r"\bassociated with\b", "linked to"), (r"\breduces\b", "lowers"), (r"\bshows\b", "shows"),
]  # fmt: skip
_REWORDS = [
    (r"^How many (.+?) (did|does|do|were|are|was|is|have|has) (.+)$", r"What is the number of \1 \2 \3"),
    (r"^What is the name of (the )?(.+?)\?$", r"What is \1\2 called?"),
    (r"^Who was (.+?)\?$", r"Which person was \1?"),
    (r"^When did (.+?)\?$", r"At what time did \1?"),
    (r"^Where (is|was) (.+?)\?$", r"In what place \1 \2?"),
]  # fmt: skip
_TRAILING = re.compile(r"^(.+?)\s+((?:in|during|on|at|by|for|after|before) [^,?]{2,40})\?$")
_STOP = set(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "what",
        "which",
        "who",
        "whom",
        "when",
        "where",
        "why",
        "how",
        "many",
        "much",
        "that",
        "this",
        "these",
        "those",
        "with",
        "from",
        "as",
        "and",
        "or",
        "it",
        "its",
        "their",
    ]
)


def paraphrase(text: str, rng: random.Random, claim: bool, mild: bool = False) -> tuple[str, str]:
    """One rule-written paraphrase of ``text`` and the rules applied (joined by '+'); ``mild``
    leaves out the rewordings and keyword queries (used on the mutated negatives)."""
    rules = ["frame", "politeness", "case_punct", "synonym", "reorder", "reword", "keywords"]
    weights = [3, 3, 3, 3, 2, 0 if mild else 1, 0 if mild else 1]
    for _ in range(10):  # bounded: try rule sets until one changes the text
        chosen = sorted(set(rng.choices(rules, weights, k=rng.randint(1, 3))), key=rules.index)
        if "keywords" in chosen:
            chosen = ["keywords"]
        out = text
        for rule in chosen:
            out = _RULES[rule](out, rng, claim)
        if out != text:
            return out, "+".join(chosen)
    return text.lower().rstrip("?.") + "?", "case_punct"


def _frame(text: str, rng: random.Random, claim: bool) -> str:
    body = text.rstrip("?. ")
    if claim:
        return rng.choice(_CLAIM_FRAMES).format(q=_lower_first(body))
    return rng.choice(_FRAMES).format(q=_lower_first(body) + "?")


def _politeness(text: str, rng: random.Random, claim: bool) -> str:
    body = text.rstrip("?. ")
    end = "?" if text.rstrip().endswith("?") else "."
    choice = rng.randrange(4)
    if choice == 0:
        return f"{body}{end} Thanks!"
    if choice == 1:
        return f"{body}, please{end}"
    if choice == 2:
        return f"Hi, {_lower_first(body)}{end}"
    filler = r"\1 actually" if claim else r"\1 exactly"
    return re.sub(r"^(\w+ \w+)", filler, body, count=1) + end


def _case_punct(text: str, rng: random.Random, claim: bool) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        return text.lower()
    if choice == 1:
        return text.rstrip("?. ")
    if choice == 2:
        return text.rstrip("?. ") + "??"
    return text.lower().rstrip("?. ") + " ?"


def _synonym(text: str, rng: random.Random, claim: bool) -> str:
    hits = [(p, r) for p, r in _SYNONYMS if re.search(p, text)]
    if not hits:
        return text
    pattern, repl = rng.choice(hits)
    return re.sub(pattern, repl, text, count=1)


def _reorder(text: str, rng: random.Random, claim: bool) -> str:
    m = _TRAILING.match(text.strip())
    if not m:
        return text
    return f"{m.group(2)[0].upper()}{m.group(2)[1:]}, {_lower_first(m.group(1))}?"


def _reword(text: str, rng: random.Random, claim: bool) -> str:
    for pattern, repl in _REWORDS:
        if re.match(pattern, text):
            return re.sub(pattern, repl, text, count=1)
    return text


def _keywords(text: str, rng: random.Random, claim: bool) -> str:
    words = [w for w in re.findall(r"[\w'$%.-]+", text.lower()) if w not in _STOP]
    return " ".join(words)


_RULES = {
    "frame": _frame,
    "politeness": _politeness,
    "case_punct": _case_punct,
    "synonym": _synonym,
    "reorder": _reorder,
    "reword": _reword,
    "keywords": _keywords,
}


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    if len(first) > 1 and (first.isupper() or any(c.isupper() for c in first[1:])):
        return text  # an acronym or a name like "NVIDIA", "iPhone"
    return text[:1].lower() + text[1:]


def positives(questions: list[Question], rng: random.Random, per: int = 2) -> list[Pair]:
    out = []
    for q in questions:
        for _ in range(per):
            text, rules = paraphrase(q.text, rng, claim=q.source == "scifact")
            out.append(Pair(q.text, text, True, rules, q.split, q.source))
    return out


def human_paraphrases(questions: list[Question]) -> list[Pair]:
    """SEC questions on one topic asked of different companies, the company made the same
    (Apple): human rewordings of one question. Evaluation only, never used for tuning."""
    sec = [q for q in questions if q.source == "sec"]
    out = []
    for topic in ("cash", "legal"):
        texts = [_one_company(q.text) for q in sec if topic in q.text.lower()]
        out += [Pair(a, b, True, "human", "both", "sec") for a, b in combinations(texts, 2)]
    return out


def _one_company(text: str) -> str:
    for company in COMPANIES:
        text = text.replace(company, "Apple")
    return text

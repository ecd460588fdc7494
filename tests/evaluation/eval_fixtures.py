"""A tiny but real evaluation tree for the harness, report and CLI tests: a BEIR-format folder
(one clearly relevant document per query, plus filler), a ragkeel test set with an answerable,
an out-of-scope and a tagged case over two Markdown files, and an eval config that points at
them with paths relative to the config file. Hashing embedder, extractive answers: no model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

TOPICS = [
    "volcano eruption lava flows",
    "penguin colony antarctic ice",
    "quantum entanglement photon pairs",
    "medieval castle siege engines",
    "coral reef bleaching events",
    "jazz saxophone improvisation",
]
GATE = 0.2  # hashing-embedder cosines: on-topic ~0.3, off-topic below 0.1
DOCS = {
    "keys.md": "# API keys\n\nRotate every API key every ninety days from the admin console.\n",
    "outage.md": "# Outage\n\nOn 3 March the upstream provider failed for forty minutes.\n",
}
TESTSET = [
    {
        "id": "keys",
        "question": "How often should I rotate an API key?",
        "expect": "answer",
        "reference_answers": ["every ninety days"],
        "relevant_source_globs": ["keys.md"],
        "tags": ["edge"],
    },
    {
        "id": "bread",
        "question": "recipe for banana bread with walnuts",
        "expect": "cannot_answer",
        "tags": ["out-of-scope"],
    },
    {
        "id": "outage",
        "question": "How long did the upstream provider fail in March?",
        "expect": "answer",
        "reference_answers": ["forty minutes"],
        "relevant_source_globs": ["outage.md"],
        "tags": ["edge", "adversarial"],
    },
]


def make_beir(root: Path, *, blank_query: bool = False) -> Path:
    """A BEIR folder; ``blank_query`` adds a query whose text is only whitespace (the answer
    flow rejects it: the harness must turn it into an error row)."""
    (root / "qrels").mkdir(parents=True)
    corpus, queries, qrels = [], [], []
    for i, topic in enumerate(TOPICS):
        corpus.append({"_id": f"d{i}", "title": topic.title(), "text": f"A study of {topic}."})
        corpus.append({"_id": f"x{i}", "title": "Noise", "text": f"Unrelated filler number {i}."})
        queries.append({"_id": f"q{i}", "text": topic})
        qrels.append(f"q{i}\td{i}\t1\n")
    if blank_query:
        queries.append({"_id": "q-blank", "text": "   "})
        qrels.append("q-blank\td0\t1\n")
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(qrels))
    return root


def make_tree(root: Path, *, blank_query: bool = False, **overrides: Any) -> Path:
    """Data under ``root/data``, the config at ``root/evals/tiny.yaml``; returns its path.
    ``overrides`` replace top-level config keys."""
    make_beir(root / "data" / "beir", blank_query=blank_query)
    docs = root / "data" / "docs"
    docs.mkdir(parents=True)
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    cases = root / "evals" / "cases.jsonl"
    cases.parent.mkdir(parents=True)
    cases.write_text("".join(json.dumps(c) + "\n" for c in TESTSET))
    config: dict[str, Any] = {
        "name": "tiny",
        "home": "../run-home",
        "settings": {
            "embedding": {"provider": "hashing"},
            "generation": {"provider": "none", "mode": "extractive", "gate_threshold": GATE},
        },
        "k": 5,
        "concurrency": 2,
        "datasets": [
            {"name": "beir", "kind": "beir", "path": "../data/beir"},
            {
                "name": "curated",
                "kind": "testset",
                "path": "cases.jsonl",
                "corpus": ["../data/docs"],
            },
        ],
        **overrides,
    }
    path = root / "evals" / "tiny.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path

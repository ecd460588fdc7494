"""The multi-turn evaluation (issue 15): conversations built from a SQuAD-style file (a small
one written here, and the committed set regenerated from ../shared/datasets), a test-set case's
``history``, an eval data set's ``cases`` (other questions of its corpus), and the harness
asking a follow-up after its history. Hashing embedder, extractive answers, the real container.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ragkeel.container import Container
from ragkeel.errors import ConfigError, DatasetError
from ragkeel.evaluation.cases import EvalCase
from ragkeel.evaluation.datasets.claim_conversations import technical, write_claim_cases
from ragkeel.evaluation.datasets.conversations import (
    Question,
    build_conversations,
    follow_up_cases,
    rewrite,
    write_cases,
)
from ragkeel.evaluation.datasets.loaders import squad_paragraph_id
from ragkeel.evaluation.datasets.testset import case_from_json, case_to_json, load_testset
from ragkeel.evaluation.run.config import load_eval_config
from ragkeel.evaluation.run.harness import run_eval

ROOT = Path(__file__).resolve().parents[2]
XQUAD = ROOT.parent / "shared" / "datasets" / "xquad-en" / "xquad.en.json"
COMMITTED = ROOT / "evals" / "cases" / "multiturn-xquad.jsonl"
STANDALONE = ROOT / "evals" / "cases" / "multiturn-xquad-standalone.jsonl"

PARAGRAPHS: dict[str, list[tuple[str, list[tuple[str, str]]]]] = {
    "Super_Bowl": [
        (
            "The Denver Broncos beat the Carolina Panthers 24-10 in Super Bowl 50. "
            "Peyton Manning said he would retire; his team celebrated in Santa Clara.",
            [
                ("Who did the Broncos beat in Super Bowl 50?", "Carolina Panthers"),
                ("How many points did the Broncos score?", "24"),
                ("Where was the game played by the Broncos?", "Santa Clara"),
            ],
        )
    ],
    "Quarterbacks": [
        (
            "Peyton Manning played for two teams. Manning said he was proud of them.",
            [
                ("How many teams did Peyton Manning play for?", "two"),
                ("What did Manning say he was?", "proud"),
            ],
        )
    ],
}


def _squad(path: Path) -> Path:
    data = {
        "version": "1.1",
        "data": [
            {
                "title": title,
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": f"{title}-{p}-{q}",
                                "question": question,
                                "answers": [{"text": answer, "answer_start": context.find(answer)}],
                            }
                            for q, (question, answer) in enumerate(qas)
                        ],
                    }
                    for p, (context, qas) in enumerate(paragraphs)
                ],
            }
            for title, paragraphs in PARAGRAPHS.items()
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_conversations_rewrite_real_questions_with_pronouns_and_ellipsis(tmp_path: Path) -> None:
    squad = _squad(tmp_path / "tiny.json")
    conversations = build_conversations(squad, count=10, seed=1)
    assert build_conversations(squad, count=10, seed=1) == conversations  # deterministic
    by_first = {c.first.text: c for c in conversations}
    bowl = by_first["Who did the Broncos beat in Super Bowl 50?"]
    asked = {f.original.text: (f.asked, f.kind) for f in bowl.follow_ups}
    assert asked == {
        "How many points did the Broncos score?": ("How many points did they score?", "pronoun"),
        "Where was the game played by the Broncos?": ("And where was the game played?", "ellipsis"),
    }
    manning = by_first["How many teams did Peyton Manning play for?"]
    (follow,) = manning.follow_ups  # "Manning": a surname in the paragraph, which says "he"
    assert follow.asked == "What did he say he was?"
    cases = follow_up_cases(conversations)
    first = next(c for c in cases if c.question == "How many points did they score?")
    assert first.history == ("Who did the Broncos beat in Super Bowl 50?",)
    assert first.reference_answers == ("24",)
    assert first.relevant_doc_ids == (squad_paragraph_id("Super_Bowl", 0),)
    assert first.tags == ("multiturn", "pronoun", "turn2")
    third = next(c for c in cases if c.id.endswith("-t3"))
    assert third.history == (
        "Who did the Broncos beat in Super Bowl 50?",
        "How many points did they score?",  # the earlier follow-up as the user asked it
    )


@pytest.mark.skipif(not XQUAD.is_file(), reason="../shared/datasets not present")
def test_the_committed_conversations_are_what_the_generator_writes(tmp_path: Path) -> None:
    out, alone = tmp_path / "mt.jsonl", tmp_path / "mt-standalone.jsonl"
    n = write_cases(XQUAD, out, alone, count=40, seed=15)
    assert out.read_text(encoding="utf-8") == COMMITTED.read_text(encoding="utf-8")
    assert alone.read_text(encoding="utf-8") == STANDALONE.read_text(encoding="utf-8")
    cases = load_testset(COMMITTED).cases
    assert n == len(cases) >= 30 and all(c.history for c in cases)
    originals = {c.id: c for c in load_testset(STANDALONE).cases}
    assert all(originals[c.id].question != c.question for c in cases)
    squad = json.loads(XQUAD.read_text(encoding="utf-8"))
    real = {
        " ".join(qa["question"].split())
        for article in squad["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }
    assert all(originals[c.id].question in real for c in cases)  # real data-set questions


def test_history_round_trips_through_the_test_set_format() -> None:
    case = EvalCase(id="c-t2", question="Who coached them?", history=("Who won in 2016?",))
    assert case_from_json(case_to_json(case)) == case
    assert "history" not in case_to_json(EvalCase(id="c", question="Who won?"))
    with pytest.raises(ValueError, match="history"):
        case_from_json({**case_to_json(case), "history": "not a list"})


def _tree(tmp_path: Path, **dataset: Any) -> Path:
    squad = _squad(tmp_path / "data" / "tiny.json")
    cases = [
        {
            "id": "bowl-t2",
            "question": "How many points did they score?",
            "history": ["Who did the Broncos beat in Super Bowl 50?"],
            "expect": "answer",
            "reference_answers": ["24"],
            "relevant_doc_ids": [squad_paragraph_id("Super_Bowl", 0)],
        }
    ]
    evals = tmp_path / "evals"
    evals.mkdir()
    (evals / "mt.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    config = {
        "name": "mt",
        "settings": {
            "embedding": {"provider": "hashing"},
            "generation": {"provider": "none", "mode": "extractive", "gate_threshold": 0.05},
        },
        "k": 5,
        "concurrency": 1,
        "datasets": [
            {"name": "mt", "kind": "squad", "path": f"../data/{squad.name}", "cases": "mt.jsonl"}
            | dataset
        ],
    }
    path = evals / "mt.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.parametrize(("mode", "condensed"), [("rules", True), ("off", False)])
def test_the_harness_asks_a_follow_up_after_its_history(
    tmp_path: Path, mode: str, condensed: bool
) -> None:
    path = _tree(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["settings"]["generation"]["condense"] = {"mode": mode}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    results = run_eval(load_eval_config(path), out_dir=tmp_path / "out", build=Container)
    (row,) = results["rows"]
    assert row["history"] == ["Who did the Broncos beat in Super Bowl 50?"]
    assert row["question"] == "How many points did they score?"
    if condensed:  # the standalone question names the Broncos: retrieval finds the paragraph
        assert "Broncos" in row["asked"] and row["metrics"]["hit@5"] == 1.0
    else:
        assert row["asked"] == row["question"]
    (info,) = results["datasets"]
    assert info["source"].endswith("mt.jsonl") and info["n_cases"] == 1
    assert results["run"]["ingest"]["mt"]  # the squad corpus was ingested for these cases


def test_cases_is_refused_where_it_means_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cases"):
        load_eval_config(_tree(tmp_path, ask_in="mt"))
    bad = _tree(tmp_path / "missing")
    raw = yaml.safe_load(bad.read_text())
    raw["datasets"][0]["cases"] = "nowhere.jsonl"
    bad.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(DatasetError):
        run_eval(load_eval_config(bad), out_dir=tmp_path / "out", build=Container)


SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact"


@pytest.mark.skipif(not SCIFACT.is_dir(), reason="../shared/datasets not present")
def test_the_committed_claim_conversations_are_what_the_generator_writes(tmp_path: Path) -> None:
    out, alone = tmp_path / "sf.jsonl", tmp_path / "sf-standalone.jsonl"
    n = write_claim_cases(SCIFACT, out, alone, count=30, seed=15)
    committed = ROOT / "evals" / "cases" / "multiturn-scifact.jsonl"
    assert out.read_text(encoding="utf-8") == committed.read_text(encoding="utf-8")
    assert alone.read_text(encoding="utf-8") == (
        ROOT / "evals" / "cases" / "multiturn-scifact-standalone.jsonl"
    ).read_text(encoding="utf-8")
    cases = load_testset(committed).cases
    assert n == len(cases) > 0
    for case in cases:  # the follow-up's abstracts relevant, the first claim's judged 0
        assert {d for d, g in case.qrels.items() if g == 1} == set(case.relevant_doc_ids)
        assert any(g == 0 for g in case.qrels.values())


def test_claim_names_are_technical_and_abbreviations_are_left_alone() -> None:
    assert technical("ALDH1") and technical("IL-6") and technical("PrP") and technical("UK")
    assert not technical("Cancer") and not technical("Patients")
    first = Question("1", "GATA-3 and HSC expansion go together.", (), ("a",))
    later = Question("2", "Hematopoietic stem cell (HSC) function needs GATA-3.", (), ("b",))
    follow = rewrite(later, first.text, "", keep=technical)
    assert follow is not None and follow.asked == "Hematopoietic stem cell (HSC) function needs it."

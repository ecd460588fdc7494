"""``ragkeel eval retrieval`` on a small BEIR-format data set made in the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ragkeel.evaluation.reports.trec import read_trec_run

TOPICS = [
    "volcano eruption lava",
    "penguin colony antarctic",
    "quantum entanglement photon",
    "medieval castle siege",
    "coral reef bleaching",
    "jazz saxophone improvisation",
]


def make_beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as f:
        for i, topic in enumerate(TOPICS):
            f.write(
                json.dumps(
                    {
                        "_id": f"d{i}",
                        "title": topic.title(),
                        "text": f"A study of {topic} and related matters.",
                    }
                )
                + "\n"
            )
            f.write(
                json.dumps(
                    {"_id": f"x{i}", "title": "Noise", "text": f"Unrelated filler text number {i}."}
                )
                + "\n"
            )
    with (root / "queries.jsonl").open("w") as f:
        for i, topic in enumerate(TOPICS):
            f.write(json.dumps({"_id": f"q{i}", "text": topic}) + "\n")
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(TOPICS)))
    )
    return root


def test_eval_retrieval_writes_run_and_report(tmp_path: Path) -> None:
    beir = make_beir(tmp_path / "tiny")
    out = tmp_path / "reports"
    env = {**os.environ, "RAGKEEL_EMBEDDING__PROVIDER": "hashing"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ragkeel",
            "eval",
            "retrieval",
            "--beir",
            str(beir),
            "--mode",
            "bm25",
            "--mode",
            "hybrid",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for mode in ("bm25", "hybrid"):
        report = json.loads((out / f"tiny-test-{mode}.json").read_text())
        assert report["n_queries"] == len(TOPICS)
        assert report["metrics"]["ndcg_cut_10"] == 1.0  # each query names its document exactly
        run = read_trec_run(out / f"tiny-test-{mode}.trec")
        assert set(run) == {f"q{i}" for i in range(len(TOPICS))}
        assert max(run["q0"], key=run["q0"].__getitem__) == "d0"
    assert "ndcg" in done.stdout.lower()
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "ragkeel",
            "eval",
            "retrieval",
            "--beir",
            str(beir),
            "--mode",
            "bm25",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "0 documents written, 12 unchanged, 0 embedded" in again.stdout


def test_eval_retrieval_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ragkeel", "eval", "retrieval", "--beir", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "DATASET_INVALID" in done.stderr

"""``ragkeel eval retrieval`` on a small BEIR-format data set made in the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragkeel.evaluation.reports.results import read_results
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


def test_eval_retrieval_writes_a_results_file_that_compare_and_gate_read(tmp_path: Path) -> None:
    """One result schema: the BEIR retrieval run writes the ``results.json`` kind of file
    (retrieval metrics per query and their aggregates, answer metrics not applicable), so
    ``eval compare`` and ``eval gate`` (with the repository's gate config) work on it."""
    beir = make_beir(tmp_path / "tiny")
    out = tmp_path / "reports"
    env = {**os.environ, "RAGKEEL_EMBEDDING__PROVIDER": "hashing"}

    def ragkeel(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ragkeel", *args],
            env={**env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = ragkeel("eval", "retrieval", "--beir", str(beir), "--mode", "bm25", "--out", str(out))
    assert done.returncode == 0, done.stderr
    path = out / "tiny-test-bm25.results.json"
    assert f"results: {path}" in done.stdout.replace("\n", "")
    results = read_results(path)
    assert results["name"] == "tiny-test-bm25"
    assert [d["name"] for d in results["datasets"]] == ["tiny-test"]
    assert results["datasets"][0]["kind"] == "beir"
    rows = results["rows"]
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(len(TOPICS))]
    for r in rows:
        assert r["answer"] is None and r["error"] is None and r["tags"] == ["beir"]
        retrieval = {"ndcg@10", "recall@10", "mrr@10", "p@10", "hit@10"}
        assert {name for name, value in r["metrics"].items() if value is not None} == retrieval
        assert {"f1", "answered", "judge"} <= set(r["metrics"])  # present: not applicable
        assert r["retrieved"][0]["document_id"] == f"d{r['id'][1:]}"
        assert r["latency_ms"]["total"] > 0
    overall = results["aggregates"]["overall"]
    assert overall["ndcg@10"] == {"mean": 1.0, "n": len(TOPICS)}
    assert "f1" not in overall and "answered" not in overall
    report = json.loads((out / "tiny-test-bm25.json").read_text())["metrics"]
    assert overall["recall@10"]["mean"] == pytest.approx(report["recall_10"])
    assert overall["ndcg@10"]["mean"] == pytest.approx(report["ndcg_cut_10"])
    assert results["aggregates"]["abstention"]["n_answerable"] == 0  # searched, not answered

    compared = ragkeel("eval", "compare", str(path), str(path))
    assert compared.returncode == 0, compared.stderr
    assert "ndcg@10" in compared.stdout
    gate = Path(__file__).resolve().parents[2] / "evals" / "gate.yaml"
    gated = ragkeel(
        "eval", "gate", "--baseline", str(path), "--current", str(path), "--config", str(gate)
    )
    assert gated.returncode == 0, gated.stdout + gated.stderr
    assert "gate passed" in gated.stdout

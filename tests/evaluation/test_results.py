"""results.json: aggregation by hand-computed cases, atomic write, validated read, git commit."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragkeel.errors import DatasetError
from ragkeel.evaluation.reports.results import (
    SCHEMA,
    EvalResults,
    Row,
    aggregate,
    git_commit,
    read_results,
    rows_by_key,
    write_results,
)


def row(
    id: str,
    metrics: dict[str, float | None],
    *,
    dataset: str = "ds",
    tags: tuple[str, ...] = (),
    expect: str = "answer",
    mode: str | None = "extractive",
    total_ms: float = 10.0,
    degraded: bool = False,
    tokens: tuple[int, int] = (0, 0),
    cost: float = 0.0,
) -> Row:
    """A row as the harness writes it; ``mode=None`` makes it a failed case."""
    answer: Any = None
    if mode is not None:
        answer = {
            "text": "t",
            "mode": mode,
            "degraded": degraded,
            "degraded_reason": "NO_MODEL" if degraded else None,
            "model": None,
            "grounded": True,
            "citations": [],
        }
    return {
        "dataset": dataset,
        "id": id,
        "question": f"question {id}?",
        "tags": list(tags),
        "expect": expect,  # type: ignore[typeddict-item]
        "metrics": metrics,
        "judge": None,
        "answer": answer,
        "retrieved": [],
        "latency_ms": {"retrieve": total_ms / 2, "total": total_ms} if mode else {"total": 1.0},
        "tokens": {"prompt": tokens[0], "completion": tokens[1]},
        "cost": cost,
        "trace_id": None,
        "error": None if mode else {"code": "QUERY_INVALID", "message": "empty"},
    }


ROWS = [
    row("a", {"f1": 1.0, "ndcg@10": None}, tags=("edge",), total_ms=10, tokens=(100, 10), cost=0.01),
    row("b", {"f1": 0.5, "ndcg@10": 0.2}, tags=("edge", "adv"), total_ms=20, degraded=True),
    row("c", {"f1": None, "ndcg@10": 0.8}, dataset="other", expect="cannot_answer", mode="cannot_answer", total_ms=30, tokens=(50, 0)),
    row("d", {"f1": 0.0, "ndcg@10": 0.0}, dataset="other", mode=None),
    row("e", {"f1": None}, dataset="other", expect="answer", mode="cannot_answer", total_ms=40),
]  # fmt: skip


def test_means_skip_null_and_count_what_they_average() -> None:
    agg = aggregate(ROWS)
    assert agg["overall"]["f1"] == {"mean": pytest.approx(1.5 / 3), "n": 3}
    assert agg["overall"]["ndcg@10"] == {"mean": pytest.approx(1.0 / 3), "n": 3}
    assert agg["by_dataset"]["ds"]["f1"] == {"mean": 0.75, "n": 2}
    assert agg["by_dataset"]["ds"]["ndcg@10"] == {"mean": 0.2, "n": 1}
    assert "f1" in agg["by_dataset"]["other"] and agg["by_dataset"]["other"]["f1"]["n"] == 1
    assert agg["by_tag"]["edge"]["f1"] == {"mean": 0.75, "n": 2}
    assert agg["by_tag"]["adv"]["f1"] == {"mean": 0.5, "n": 1}
    assert "ndcg@10" not in agg["by_tag"]["adv"] or agg["by_tag"]["adv"]["ndcg@10"]["n"] == 1


def test_a_metric_that_never_applies_is_absent_not_zero() -> None:
    agg = aggregate([row("x", {"format_ok": None, "f1": 0.5})])
    assert "format_ok" not in agg["overall"] and agg["overall"]["f1"]["n"] == 1


def test_abstention_figures() -> None:
    ab = aggregate(ROWS)["abstention"]
    # answerable: a, b (answered), d (failed: not answered), e (refused) -> 2 of 4
    assert ab["n_answerable"] == 4 and ab["answered_when_answerable"] == 0.5
    assert ab["n_unanswerable"] == 1 and ab["refused_when_unanswerable"] == 1.0
    # refusals: c (right) and e (wrong) -> precision 1/2
    assert ab["n_refused"] == 2 and ab["cannot_answer_precision"] == 0.5


def test_a_retrieval_only_row_is_not_in_the_abstention_figures() -> None:
    searched = row("s", {"ndcg@10": 1.0, "f1": None})
    searched["answer"] = None  # searched, not answered (eval retrieval): no answer, no error
    ab = aggregate([*ROWS, searched])["abstention"]
    assert ab == aggregate(ROWS)["abstention"]
    assert aggregate([searched])["abstention"]["n_answerable"] == 0


def test_abstention_without_denominators_is_null() -> None:
    ab = aggregate([row("a", {})])["abstention"]
    assert ab["refused_when_unanswerable"] is None and ab["cannot_answer_precision"] is None


def test_ops_percentiles_tokens_cost_and_shares() -> None:
    ops = aggregate(ROWS)["ops"]
    totals = [10.0, 20.0, 30.0, 40.0]  # the failed row's latency is not a latency sample
    assert ops["latency_ms"]["total"]["p50"] == pytest.approx(float(np.percentile(totals, 50)))
    assert ops["latency_ms"]["total"]["p95"] == pytest.approx(float(np.percentile(totals, 95)))
    assert ops["latency_ms"]["total"]["max"] == 40.0
    assert ops["latency_ms"]["retrieve"]["max"] == 20.0
    assert ops["tokens_per_query"] == {"prompt": 30.0, "completion": 2.0}
    assert ops["cost_total"] == pytest.approx(0.01) and ops["cost_per_query"] == pytest.approx(
        0.002
    )
    assert ops["degraded_share"] == 0.2 and ops["error_share"] == 0.2 and ops["n"] == 5


def test_empty_run_aggregates_to_zeros_not_errors() -> None:
    agg = aggregate([])
    assert agg["overall"] == {} and agg["ops"]["n"] == 0 and agg["ops"]["latency_ms"] == {}


def results_doc(rows: list[Row]) -> EvalResults:
    return {
        "schema": SCHEMA,
        "name": "unit",
        "created_at": "2026-01-01T00:00:00Z",
        "git_commit": None,
        "config": {"k": 10},
        "settings": {},
        "datasets": [{"name": "ds", "kind": "beir", "source": "/x", "sha256": "0" * 64, "n_cases": 2}],
        "rows": rows,
        "aggregates": aggregate(rows),
    }  # fmt: skip


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    doc = results_doc(ROWS)
    path = tmp_path / "out" / "results.json"
    write_results(path, doc)
    assert read_results(path) == json.loads(json.dumps(doc))
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temporary left
    assert set(rows_by_key(read_results(path))) == {(r["dataset"], r["id"]) for r in ROWS}


def test_write_refuses_nan(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_results(tmp_path / "r.json", results_doc([row("a", {"f1": float("nan")})]))
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"schema": "ragkeel.eval.results/0"}), "is not an eval results file"),
        (json.dumps([1, 2]), "is not an eval results file"),
        (json.dumps({"schema": SCHEMA, "name": "x"}), "malformed.*created_at"),
    ],
)
def test_read_rejects_what_is_not_a_results_file(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(DatasetError, match=match):
        read_results(path)


def test_read_names_a_bad_row_field(tmp_path: Path) -> None:
    doc: Any = results_doc(ROWS)
    doc["rows"][1]["metrics"]["f1"] = "high"
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match=r"rows\.1\.metrics\.f1"):
        read_results(path)


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        read_results(tmp_path / "nope.json")


def test_git_commit_inside_and_outside_a_repository(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run([*git, "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-q", "-m", "c"], check=True)
    full = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    commit = git_commit(tmp_path)
    assert commit is not None and full.startswith(commit) and len(commit) >= 7

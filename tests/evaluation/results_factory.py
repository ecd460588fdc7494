"""Synthetic ``results.json`` documents (schema ``ragkeel.eval.results/1``) for the comparison
and gate tests: per-case metric values are given explicitly, everything else follows the
contract with plausible values; ``aggregates`` come from the writer's own ``aggregate`` (the
ops block can be replaced, to plant budget problems)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ragkeel.evaluation.reports.results import Row, aggregate

Scores = Mapping[tuple[str, str], Mapping[str, float | None]]


def default_ops(n: int, **overrides: Any) -> dict[str, Any]:
    ops: dict[str, Any] = {
        "latency_ms": {
            "retrieve": {"p50": 10.0, "p95": 20.0, "max": 30.0},
            "total": {"p50": 100.0, "p95": 200.0, "max": 300.0},
        },
        "tokens_per_query": {"prompt": 800.0, "completion": 60.0},
        "cost_per_query": 0.0,
        "cost_total": 0.0,
        "degraded_share": 0.0,
        "error_share": 0.0,
        "n": n,
    }
    ops.update(overrides)
    return ops


def make_results(
    scores: Scores,
    *,
    name: str = "run",
    checksums: Mapping[str, str] | None = None,
    ops: Mapping[str, Any] | None = None,
    answer_prefix: str = "answer",
) -> dict[str, Any]:
    datasets = sorted({d for d, _ in scores})
    sums = dict(checksums or {})
    rows: list[Row] = []
    for (dataset, case_id), metrics in scores.items():
        rows.append(
            {
                "dataset": dataset,
                "id": case_id,
                "question": f"question {case_id}?",
                "tags": [],
                "expect": "answer",
                "metrics": dict(metrics),
                "judge": None,
                "answer": {
                    "text": f"{answer_prefix} to {case_id}",
                    "mode": "extractive",
                    "degraded": False,
                    "degraded_reason": None,
                    "model": "extractive",
                    "grounded": True,
                    "citations": [
                        {"number": 1, "document_id": "d1", "source": "s", "snippet": "x" * 200}
                    ],
                },
                "retrieved": [
                    {
                        "rank": 1,
                        "document_id": "d1",
                        "chunk_id": "c1",
                        "source": "s",
                        "score": 0.5,
                        "text": "y" * 300,
                    }
                ],
                "latency_ms": {"retrieve": 10.0, "total": 100.0},
                "tokens": {"prompt": 800, "completion": 60},
                "cost": 0.0,
                "trace_id": f"t-{case_id}",
                "error": None,
            }
        )
    return {
        "schema": "ragkeel.eval.results/1",
        "name": name,
        "created_at": "2026-11-25T23:59:00Z",
        "git_commit": None,
        "config": {},
        "settings": {},
        "datasets": [
            {
                "name": d,
                "kind": "testset",
                "source": f"/data/{d}",
                "sha256": sums.get(d, f"sha-{d}"),
                "n_cases": sum(1 for ds, _ in scores if ds == d),
            }
            for d in datasets
        ],
        "rows": rows,
        "aggregates": {
            **aggregate(rows),
            "ops": dict(ops if ops is not None else default_ops(len(rows))),
        },
    }


def uniform(
    dataset: str, values: list[float | None], metric: str = "f1"
) -> dict[tuple[str, str], dict[str, float | None]]:
    """One case per value, ids ``<dataset>-0``, ``<dataset>-1``, …, scored on ``metric``."""
    return {(dataset, f"{dataset}-{i}"): {metric: v} for i, v in enumerate(values)}


def write(path: Path, document: Mapping[str, Any]) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path

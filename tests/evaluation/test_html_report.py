"""The HTML report: one self-contained file with plots, escaped text and the worst cases."""

from __future__ import annotations

import base64
import random
import re
from pathlib import Path

from ragkeel.container import Container
from ragkeel.evaluation.reports.html import primary_metric, render_report, write_report
from ragkeel.evaluation.reports.results import SCHEMA, EvalResults, Row, aggregate
from ragkeel.evaluation.run.config import load_eval_config
from ragkeel.evaluation.run.harness import run_eval

from eval_fixtures import make_tree  # isort: skip

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def synthetic(n: int, *, seed: int = 0) -> EvalResults:
    """``n`` rows shaped like the harness's, metric values seeded-random, two data sets."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for i in range(n):
        ndcg = rng.random()
        rows.append(
            {
                "dataset": "alpha" if i % 2 else "beta",
                "id": f"case-{i}",
                "question": f"What is item {i}? <b>bold</b> & co",
                "tags": ["edge"] if i % 3 == 0 else [],
                "expect": "answer",
                "metrics": {"ndcg@10": ndcg, "f1": rng.random(), "judge": None},
                "judge": None,
                "answer": {
                    "text": f"Answer {i} [1].",
                    "mode": "extractive",
                    "degraded": False,
                    "degraded_reason": None,
                    "model": None,
                    "grounded": True,
                    "citations": [],
                },
                "retrieved": [
                    {
                        "rank": r,
                        "document_id": f"doc-{i}-{r}",
                        "chunk_id": f"c{r}",
                        "source": "/data/x.md",
                        "score": 1.0 / r,
                        "text": "lorem ipsum " * 25,
                    }
                    for r in range(1, 11)
                ],
                "latency_ms": {"retrieve": rng.uniform(1, 20), "total": rng.uniform(20, 200)},
                "tokens": {"prompt": 0, "completion": 0},
                "cost": 0.0,
                "trace_id": f"trace-{i}",
                "error": None,
                "references": [f"ref {i}"],
            }
        )
    return {
        "schema": SCHEMA,
        "name": "synthetic",
        "created_at": "2026-01-01T00:00:00Z",
        "git_commit": "abc1234",
        "config": {"k": 10},
        "settings": {"generation": {"openai": {"base_url": "https://api.example.com/v1"}}},
        "datasets": [],
        "rows": rows,
        "aggregates": aggregate(rows),
    }


def images(html: str) -> list[bytes]:
    found = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    return [base64.b64decode(b) for b in found]


def test_report_is_self_contained_with_png_plots() -> None:
    html = render_report(synthetic(40))
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    pngs = images(html)
    assert len(pngs) == 2 and all(p.startswith(PNG_MAGIC) for p in pngs)  # metrics, latency
    assert "<script" not in html.lower() and "<link" not in html.lower()


def test_text_from_the_data_is_escaped() -> None:
    results = synthetic(4)
    results["rows"][0]["question"] = '<script>alert("x")</script>'
    results["rows"][0]["metrics"]["f1"] = -0.0  # the worst of its data set: shown
    results["aggregates"] = aggregate(results["rows"])
    html = render_report(results)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html


def test_worst_cases_are_the_lowest_primary_metric_per_data_set() -> None:
    results = synthetic(30)
    html = render_report(results)
    assert primary_metric(results["rows"], 10) == "f1"
    for dataset in ("alpha", "beta"):
        rows = [r for r in results["rows"] if r["dataset"] == dataset]
        worst = min(rows, key=lambda r: r["metrics"]["f1"] or 0.0)
        best = max(rows, key=lambda r: r["metrics"]["f1"] or 0.0)
        assert f"trace-{worst['id'].split('-')[1]}</code>" in html
        assert f">{best['id']}: " not in html
    assert "lowest f1" in html and "ref " in html and "lorem ipsum" in html


def test_failed_cases_come_first_among_the_worst() -> None:
    results = synthetic(20)
    failed = results["rows"][4]
    failed["error"] = {"code": "QUERY_INVALID", "message": "the query is empty"}
    failed["answer"] = None
    failed["metrics"]["f1"] = 0.99
    results["aggregates"] = aggregate(results["rows"])
    html = render_report(results)
    assert "error QUERY_INVALID: the query is empty" in html
    assert "failed to run" in html


def test_500_rows_stay_under_one_megabyte(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_report(path, synthetic(500))
    assert path.stat().st_size < 1_000_000


def test_report_of_a_real_run_has_tags_abstention_and_ops(tmp_path: Path) -> None:
    config = load_eval_config(make_tree(tmp_path))
    results = run_eval(config, out_dir=tmp_path / "out", build=Container)
    html = render_report(results)
    for text in ("Per tag", "out-of-scope", "refused when unanswerable", "p95 ms", "Worst cases"):
        assert text in html
    assert results["rows"][0]["trace_id"] in html  # type: ignore[operator]
    assert len(images(html)) == 2

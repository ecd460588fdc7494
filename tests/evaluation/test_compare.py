"""Comparing two runs: paired deltas per metric and data set, nulls, missing metrics, changed
cases, operations, the JSON form and the rich table; reading results files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from results_factory import default_ops, make_results, uniform, write
from rich.console import Console

from ragkeel.errors import DatasetError
from ragkeel.evaluation.reports.compare import OVERALL, compare, dataset_mismatches
from ragkeel.evaluation.reports.compare_table import render_table
from ragkeel.evaluation.reports.results_view import load_results, parse_results


def two_sets(f1_sq: list[float | None], ndcg_sf: list[float]) -> dict[tuple[str, str], dict]:
    scores: dict[tuple[str, str], dict] = {}
    for i, v in enumerate(f1_sq):
        scores[("sq", f"q{i}")] = {"f1": v, "ndcg@10": None}
    for i, v in enumerate(ndcg_sf):
        scores[("sf", f"s{i}")] = {"f1": None, "ndcg@10": v}
    return scores


def test_identical_runs_show_no_change() -> None:
    doc = make_results(two_sets([0.5, 1.0, 0.0, 0.25], [0.3, 0.9, 0.6]))
    result = compare(parse_results(doc), parse_results(doc))
    assert {(m.metric, m.scope) for m in result.metrics} == {
        ("f1", OVERALL),
        ("ndcg@10", OVERALL),
        ("f1", "sq"),
        ("ndcg@10", "sf"),
    }  # a metric null on every row of a data set in both runs is simply not applicable there
    assert all(m.delta == 0 and m.p_value == 1.0 for m in result.metrics)
    assert result.changed == () and result.missing == ()
    assert result.dataset_mismatches == () and result.only_in_a == result.only_in_b == ()


def test_planted_drop_is_measured_per_scope() -> None:
    base = [0.8] * 30
    cur = [0.8] * 10 + [0.2] * 20
    a = parse_results(make_results(two_sets(base, [0.5] * 5)))
    b = parse_results(make_results(two_sets(cur, [0.5] * 5)))
    result = compare(a, b)
    f1, overall = result.metric("f1", "sq"), result.metric("f1")
    assert f1 is not None and overall is not None
    assert dataclasses.replace(overall, scope="sq") == f1  # sf has no f1: the same 30 pairs
    assert f1.mean_a == pytest.approx(0.8)
    assert f1.mean_b == pytest.approx((10 * 0.8 + 20 * 0.2) / 30)
    assert f1.delta == pytest.approx(-0.4)
    assert f1.ci_low <= f1.delta <= f1.ci_high < 0
    assert f1.p_value < 0.001 and f1.n == 30
    ndcg = result.metric("ndcg@10", "sf")
    assert ndcg is not None and ndcg.delta == 0.0 and ndcg.p_value == 1.0


def test_nulls_are_dropped_and_counted() -> None:
    a = parse_results(make_results(uniform("sq", [1.0, None, 0.5, 0.0])))
    b = parse_results(make_results(uniform("sq", [0.0, 1.0, None, 0.0])))
    f1 = compare(a, b).metric("f1")
    assert f1 is not None
    assert (f1.n, f1.n_dropped) == (2, 2)
    assert (f1.mean_a, f1.mean_b) == (0.5, 0.0)


def test_metric_on_one_side_only_is_reported_missing() -> None:
    base = uniform("sq", [0.5, 0.5])
    cur = {k: {**v, "judge": 0.9} for k, v in base.items()}
    result = compare(parse_results(make_results(base)), parse_results(make_results(cur)))
    missing = {(m.metric, m.scope): m.reason for m in result.missing}
    assert "only the current (B) run" in missing[("judge", OVERALL)]
    assert ("judge", "sq") in missing
    assert result.metric("judge") is None
    nulls = {k: {**v, "judge": None} for k, v in base.items()}
    quiet = compare(parse_results(make_results(nulls)), parse_results(make_results(nulls)))
    assert quiet.missing == ()  # null everywhere in both runs: not applicable, nothing to say
    asked = compare(
        parse_results(make_results(nulls)), parse_results(make_results(nulls)), metrics=["judge"]
    )
    assert [(m.metric, m.scope, m.reason) for m in asked.missing] == [
        ("judge", OVERALL, "in neither run")
    ]


def test_changed_cases_largest_first_with_question_and_answers() -> None:
    a = make_results(uniform("sq", [1.0, 1.0, 1.0, 0.5]), answer_prefix="old")
    b = make_results(uniform("sq", [1.0, 0.0, 0.7, 1.0]), answer_prefix="new")
    result = compare(parse_results(a), parse_results(b), top_changed=2)
    assert [(c.id, round(c.delta, 2)) for c in result.changed] == [("sq-1", -1.0), ("sq-3", 0.5)]
    first = result.changed[0]
    assert (first.question, first.answer_a, first.answer_b) == (
        "question sq-1?",
        "old to sq-1",
        "new to sq-1",
    )


def test_unmatched_rows_and_changed_checksums_are_listed() -> None:
    a = parse_results(make_results(uniform("sq", [1.0, 1.0, 1.0])))
    b_scores = uniform("sq", [1.0, 1.0])
    b_scores[("sq", "extra")] = {"f1": 0.0}
    b = parse_results(make_results(b_scores, checksums={"sq": "f" * 64}))
    result = compare(a, b)
    assert result.only_in_a == (("sq", "sq-2"),)
    assert result.only_in_b == (("sq", "extra"),)
    problems = dataset_mismatches(a, b)
    assert any("sha256" in p for p in problems)
    assert any("only in the baseline run: sq/sq-2" in p for p in problems)
    assert any("only in the current run: sq/extra" in p for p in problems)
    f1 = result.metric("f1")
    assert f1 is not None and f1.n == 2  # only matched rows are paired


def test_ops_side_by_side() -> None:
    scores = uniform("sq", [1.0])
    slow = default_ops(1, cost_per_query=0.002)
    slow["latency_ms"]["total"]["p95"] = 900.0
    result = compare(
        parse_results(make_results(scores)), parse_results(make_results(scores, ops=slow))
    )
    ops = {row.name: (row.a, row.b) for row in result.ops}
    assert ops["latency p95 total (ms)"] == (200.0, 900.0)
    assert ops["latency p50 retrieve (ms)"] == (10.0, 10.0)
    assert ops["cost per query"] == (0.0, 0.002)
    assert ops["prompt tokens/query"] == (800.0, 800.0)


def test_to_dict_is_json_and_table_renders() -> None:
    a = parse_results(make_results(uniform("sq", [1.0, 1.0, 0.0]), name="base"))
    b = parse_results(make_results(uniform("sq", [0.0, 1.0, 0.0]), name="cand"))
    result = compare(a, b)
    data = json.loads(result.to_json())
    assert data["name_a"] == "base" and data["changed"][0]["delta"] == -1.0
    assert {m["metric"] for m in data["metrics"]} == {"f1"}
    console = Console(record=True, width=200)
    console.print(render_table(result))
    text = console.export_text()
    for needle in ("A = base", "B = cand", "f1", "-0.3333", "latency p95 total", "sq/sq-0"):
        assert needle in text


def test_results_files_are_validated(tmp_path: Path) -> None:
    good = write(tmp_path / "r.json", make_results(uniform("sq", [1.0])))
    assert load_results(good).rows[("sq", "sq-0")].metrics == {"f1": 1.0}
    with pytest.raises(DatasetError, match="schema"):
        parse_results({"schema_version": 1})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_results(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text(json.dumps({**make_results({}), "rows": [{}]}))
    with pytest.raises(DatasetError, match="malformed"):
        load_results(tmp_path / "partial.json")
    with pytest.raises(DatasetError, match="cannot read"):
        load_results(tmp_path / "absent.json")
    doc = make_results(uniform("sq", [1.0]))
    doc["rows"][0]["metrics"]["f1"] = "high"
    with pytest.raises(DatasetError, match="not a number"):
        parse_results(doc)
    doc = make_results(uniform("sq", [1.0]))
    doc["rows"].append(doc["rows"][0])
    with pytest.raises(DatasetError, match="duplicate row"):
        parse_results(doc)
    doc = make_results(uniform("sq", [1.0]))
    del doc["datasets"]
    with pytest.raises(DatasetError, match="malformed"):
        parse_results(doc)

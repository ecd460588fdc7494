"""The regression gate on synthetic results: significant drops beyond tolerance fail, drops
within tolerance pass, large but insignificant drops pass with a note, budgets, missing
metrics, data set mismatches, the config file and the slimmed baseline."""

from __future__ import annotations

from pathlib import Path

import pytest
from results_factory import default_ops, make_results, uniform

from ragkeel.errors import ConfigError, DatasetMismatchError, MetricMismatchError
from ragkeel.evaluation.reports.gate import (
    GateConfig,
    evaluate_gate,
    load_gate_config,
    slim_results,
)
from ragkeel.evaluation.reports.results import write_results
from ragkeel.evaluation.reports.results_view import EvalResults, load_results, parse_results

REPO = Path(__file__).resolve().parents[2]
F1_ONLY = GateConfig.model_validate({"metrics": {"f1": {"tolerance": 0.03}}})


def run(values: list[float | None], dataset: str = "sq", **kwargs: object) -> EvalResults:
    return parse_results(make_results(uniform(dataset, values), **kwargs))  # type: ignore[arg-type]


def test_significant_drop_beyond_tolerance_fails_with_reason() -> None:
    result = evaluate_gate(run([1.0] * 40), run([1.0] * 10 + [0.0] * 30), F1_ONLY)
    assert not result.passed
    scopes = {(f.metric, f.scope) for f in result.failures}
    assert scopes == {("f1", "overall"), ("f1", "sq")}
    reason = result.failures[0].reason
    assert "significant drop beyond tolerance" in reason and "1.0000 -> 0.2500" in reason


def test_significant_drop_within_tolerance_passes() -> None:
    result = evaluate_gate(run([0.9] * 100), run([0.88] * 100), F1_ONLY)
    overall = result.comparison.metric("f1")
    assert overall is not None and overall.p_value < 0.001  # real, but small enough to accept
    assert result.passed and result.failures == [] and result.notes == []


def test_large_drop_on_few_cases_is_not_significant_and_passes_with_a_note() -> None:
    result = evaluate_gate(run([1.0, 1.0, 1.0]), run([0.0, 0.0, 0.0]), F1_ONLY)
    assert result.passed
    assert result.notes and "not significant" in result.notes[0].detail
    assert "p=0.2500" in result.notes[0].detail  # exact: 2 of 2**3 sign assignments


def test_improvement_passes() -> None:
    assert evaluate_gate(run([0.2] * 30), run([0.9] * 30), F1_ONLY).passed


def test_drop_hidden_in_the_overall_mean_fails_per_data_set() -> None:
    scores = {**uniform("small", [0.5] * 20), **uniform("big", [0.5] * 300)}
    worse = {**uniform("small", [0.3] * 20), **uniform("big", [0.5] * 300)}
    base, cur = parse_results(make_results(scores)), parse_results(make_results(worse))
    result = evaluate_gate(base, cur, F1_ONLY)
    assert [(f.metric, f.scope) for f in result.failures] == [("f1", "small")]
    overall_only = F1_ONLY.model_copy(update={"per_dataset": False})
    assert evaluate_gate(base, cur, overall_only).passed


def test_budgets_are_ceilings_on_the_current_run() -> None:
    config = GateConfig.model_validate(
        {
            "budgets": {
                "latency_p95_ms": {"stage": "total", "max": 500},
                "cost_per_query": {"max": 0.01},
                "degraded_share": {"max": 0.2},
                "error_share": {"max": 0.0},
            }
        }
    )
    ok = run([1.0])
    assert evaluate_gate(ok, ok, config).passed
    bad_ops = default_ops(1, cost_per_query=0.05, error_share=0.1, degraded_share=0.2)
    bad_ops["latency_ms"]["total"]["p95"] = 501.0
    result = evaluate_gate(ok, run([1.0], ops=bad_ops), config)
    failed = {f.metric: f.reason for f in result.failures}
    assert set(failed) == {"latency p95 total (ms)", "cost_per_query", "error_share"}
    assert "501 exceeds the budget 500" in failed["latency p95 total (ms)"]
    # the baseline's own latency is irrelevant: a slow baseline does not excuse a slow run
    assert not evaluate_gate(run([1.0], ops=bad_ops), run([1.0], ops=bad_ops), config).passed


def test_budget_for_an_unreported_stage_fails() -> None:
    config = GateConfig.model_validate(
        {"budgets": {"latency_p95_ms": {"stage": "rerank", "max": 9}}}
    )
    result = evaluate_gate(run([1.0]), run([1.0]), config)
    assert [f.reason for f in result.failures] == [
        "budget set but the current run does not report it"
    ]


def _rows(n: int, **metrics: float | None) -> dict[tuple[str, str], dict[str, float | None]]:
    return {("beir", f"q{i}"): dict(metrics) for i in range(n)}


def test_metric_in_neither_run_is_not_applicable_not_a_failure() -> None:
    """Two runs of one retrieval-only config (BEIR qrels, no reference answers): f1 and
    contains are null on every row of both runs. That is "not applicable", reported as such."""
    config = GateConfig.model_validate(
        {"metrics": {m: {"tolerance": 0.03} for m in ("ndcg@10", "f1", "contains")}}
    )
    doc = parse_results(make_results(_rows(20, **{"ndcg@10": 0.5, "f1": None, "contains": None})))
    result = evaluate_gate(doc, doc, config)
    assert result.passed and result.failures == [], [f.reason for f in result.failures]
    status = {(c.name, c.scope): c.status for c in result.checks}
    assert status == {
        ("ndcg@10", "overall"): "pass",
        ("f1", "overall"): "n/a",
        ("contains", "overall"): "n/a",
        ("ndcg@10", "beir"): "pass",
        ("f1", "beir"): "n/a",
        ("contains", "beir"): "n/a",
    }
    assert {c.name for c in result.not_applicable} == {"f1", "contains"}


def test_metric_neither_run_computes_is_invalid_input() -> None:
    """A name no row of either run carries (a typo, another k) is not "not applicable"."""
    config = GateConfig.model_validate({"metrics": {"ndgc@10": {"tolerance": 0.02}}})
    doc = parse_results(make_results(_rows(5, **{"ndcg@10": 0.5})))
    with pytest.raises(MetricMismatchError, match="ndgc@10: neither run computes it") as caught:
        evaluate_gate(doc, doc, config)
    assert caught.value.code == "METRIC_MISMATCH"


def test_metric_only_one_run_computes_is_a_data_difference() -> None:
    config = GateConfig.model_validate(
        {"metrics": {"f1": {"tolerance": 0.0}, "judge": {"tolerance": 0.1}}}
    )
    base = run([1.0, 1.0])
    cur = parse_results(make_results({k: {"f1": 1.0, "judge": 0.8} for k in base.rows}))
    with pytest.raises(MetricMismatchError, match=r"judge \[overall\]: only the current \(B\)"):
        evaluate_gate(base, cur, config)
    with pytest.raises(MetricMismatchError, match="only the baseline"):
        evaluate_gate(cur, base, config)
    lenient = F1_ONLY.model_copy(update={"require_same_datasets": False})
    other = parse_results(make_results(uniform("sq", [None, None]), checksums={"sq": "0" * 64}))
    with pytest.raises(MetricMismatchError, match="different data"):
        evaluate_gate(base, other, lenient)


def test_metric_the_current_run_no_longer_has_on_the_same_data_fails() -> None:
    """Same data, same metrics computed, but no case of the current run has a value (every
    answer refused: grounded_share applies to answers only): a regression, not a data change."""
    config = GateConfig.model_validate({"metrics": {"grounded_share": {"tolerance": 0.05}}})
    base = parse_results(make_results(_rows(10, grounded_share=0.9)))
    cur = parse_results(make_results(_rows(10, grounded_share=None)))
    result = evaluate_gate(base, cur, config)
    assert not result.passed
    assert {(f.scope, f.reason) for f in result.failures} == {
        ("overall", "metric missing: only the baseline (A) run reports it"),
        ("beir", "metric missing: only the baseline (A) run reports it"),
    }


def test_metric_not_applicable_to_a_data_set_is_not_a_failure() -> None:
    scores = {**uniform("sq", [1.0, 0.5]), **uniform("sf", [None, None])}
    doc = parse_results(make_results(scores))
    result = evaluate_gate(doc, doc, F1_ONLY)
    assert result.passed
    assert [(c.scope, c.status) for c in result.checks] == [
        ("overall", "pass"),
        ("sf", "n/a"),
        ("sq", "pass"),
    ]


def test_different_data_is_not_a_regression_test() -> None:
    base = run([1.0, 1.0])
    changed = run([1.0, 1.0], checksums={"sq": "0" * 64})
    with pytest.raises(DatasetMismatchError, match="sha256") as caught:
        evaluate_gate(base, changed, F1_ONLY)
    assert caught.value.code == "DATASET_MISMATCH"
    with pytest.raises(DatasetMismatchError, match="only in the current run"):
        evaluate_gate(base, run([1.0, 1.0, 1.0]), F1_ONLY)
    lenient = F1_ONLY.model_copy(update={"require_same_datasets": False})
    result = evaluate_gate(base, changed, lenient)
    assert result.passed and result.comparison.dataset_mismatches


def test_committed_gate_config_loads() -> None:
    config = load_gate_config(REPO / "evals" / "gate.yaml")
    assert config.alpha == 0.05 and config.require_same_datasets
    assert config.metrics["ndcg@10"].tolerance == 0.02
    assert config.budgets.latency_p95_ms is not None
    assert config.budgets.latency_p95_ms.stage == "total"


@pytest.mark.parametrize(
    "text",
    [
        "alpha: 0.05\nmetircs: {}\n",  # typo: unknown keys are rejected, not ignored
        "alpha: 1.5\n",
        "metrics: {f1: {tolerance: -0.1}}\n",
        "budgets: {latency_p95_ms: {max: 0}}\n",
        "alpha: [unclosed\n",
    ],
)
def test_invalid_gate_config_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_gate_config(path)


def test_slim_results_cuts_bulky_text_and_keeps_what_the_gate_reads(tmp_path: Path) -> None:
    doc = make_results(uniform("sq", [1.0, 0.5]))
    hit = doc["rows"][0]["retrieved"][0]
    doc["rows"][0]["retrieved"] += [{**hit, "rank": 2}, {**hit, "rank": 3}]
    slim = slim_results(doc, keep_hits=2, keep_chars=10)
    assert [h["rank"] for h in slim["rows"][0]["retrieved"]] == [1, 2]
    assert slim["rows"][0]["retrieved"][0]["text"] == "y" * 10
    assert slim["rows"][0]["answer"]["citations"][0]["snippet"] == "x" * 10
    assert doc["rows"][0]["retrieved"][0]["text"] == "y" * 300  # the input is not modified
    assert parse_results(slim).rows == parse_results(doc).rows
    path = tmp_path / "slim.json"
    write_results(path, slim)  # type: ignore[arg-type]
    assert load_results(path).rows == parse_results(doc).rows  # still follows the contract

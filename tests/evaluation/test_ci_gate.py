"""The CI gate end to end: the REAL ci-smoke evaluation (``evals/ci-smoke.yaml``: hashing
embedder, extractive answers, small SciFact/XQuAD samples and the curated set) run through the
harness and the container, gated against the committed baseline with the committed gate config.

- A no-op change (the config as committed) PASSES against ``evals/baselines/ci-smoke.json``.
- Planted regressions FAIL: keyword retrieval switched off (dense-only fusion), and the answer
  gate threshold broken (0.99: everything is refused).

The runs share one home (one index, ingested once) and run once per module. Nothing is mocked:
the regressions are made through the run's settings, as a bad change to ragkeel.yaml would."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ragkeel.container import Container
from ragkeel.evaluation.reports.gate import GateResult, evaluate_gate, load_gate_config
from ragkeel.evaluation.reports.results_view import EvalResults, load_results
from ragkeel.evaluation.run.config import load_eval_config
from ragkeel.evaluation.run.harness import RESULTS_FILE, run_eval

REPO = Path(__file__).resolve().parents[2]
CI_CONFIG = REPO / "evals" / "ci-smoke.yaml"
BASELINE = REPO / "evals" / "baselines" / "ci-smoke.json"
GATE = REPO / "evals" / "gate.yaml"

VARIANTS: Mapping[str, Mapping[str, Any]] = {
    "no-op": {},
    # retrieval regression: keyword search switched off (fusion weights 0/1). With the hashing
    # embedder of ci-smoke, *dense* is the weaker retriever (switching dense off raises nDCG),
    # so turning keyword search off is the change that really hurts. (The answerer always asks
    # the retriever for mode "hybrid": `retrieval.mode` does not reach answers; weights do.)
    "no-keyword": {"retrieval": {"keyword_weight": 0.0, "dense_weight": 1.0}},
    "gate-broken": {"generation": {"gate_threshold": 0.99}},
}


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        out[key] = (
            _merge(old, value) if isinstance(old, Mapping) and isinstance(value, Mapping) else value
        )
    return out


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GateResult]:
    """Each variant run once (shared home: the corpus is ingested by the first run only) and
    gated against the committed baseline."""
    home = tmp_path_factory.mktemp("ci-gate-home")
    empty_settings = home / "empty-settings.yaml"
    empty_settings.write_text("{}\n")
    baseline = load_results(BASELINE)
    gate = load_gate_config(GATE)
    results: dict[str, GateResult] = {}
    with pytest.MonkeyPatch.context() as env:  # as scripts/ci-eval-gate.sh: only the config counts
        for name in [n for n in os.environ if n.startswith("RAGKEEL_")]:
            env.delenv(name)
        env.setenv("RAGKEEL_CONFIG", str(empty_settings))
        for name, overrides in VARIANTS.items():
            config = load_eval_config(CI_CONFIG)
            config = config.model_copy(
                update={"home": home, "settings": _merge(config.settings, overrides)}
            )
            out = tmp_path_factory.mktemp(f"ci-gate-{name}")
            run_eval(config, out_dir=out, build=Container)
            current: EvalResults = load_results(out / RESULTS_FILE)
            results[name] = evaluate_gate(baseline, current, gate)
    return results


def _failed(result: GateResult) -> set[tuple[str, str]]:
    return {(f.metric, f.scope) for f in result.failures}


def test_no_op_change_passes_against_the_committed_baseline(gated: dict[str, GateResult]) -> None:
    result = gated["no-op"]
    assert result.passed, [f.reason for f in result.failures]
    assert result.notes == []
    checked = {c.name for c in result.checks if c.status == "pass"}
    assert {"ndcg@10", "f1", "contains", "latency p95 total (ms)", "error_share"} <= checked


def test_switching_keyword_retrieval_off_fails_on_retrieval_metrics(
    gated: dict[str, GateResult],
) -> None:
    result = gated["no-keyword"]
    assert not result.passed
    failed_metrics = {metric for metric, _ in _failed(result)}
    assert failed_metrics & {"ndcg@10", "recall@10"}, [f.reason for f in result.failures]


def test_breaking_the_answer_gate_fails_on_answer_metrics(gated: dict[str, GateResult]) -> None:
    result = gated["gate-broken"]
    assert not result.passed
    failed_metrics = {metric for metric, _ in _failed(result)}
    assert {"f1", "contains"} <= failed_metrics, [f.reason for f in result.failures]
    reasons = {(f.metric, f.scope): f.reason for f in result.failures}
    assert "significant drop beyond tolerance" in reasons[("contains", "overall")]

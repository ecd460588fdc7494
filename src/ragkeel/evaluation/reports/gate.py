"""The regression gate: does the current evaluation run fall short of the baseline?

A metric fails only when its mean drops by more than its tolerance (absolute) **and** the drop
is significant (paired sign-flip test, two-sided, ``p < alpha``). Both are needed: tolerance
alone flags noise on small sets, significance alone flags tiny real changes nobody cares about.
A drop beyond tolerance that is not significant passes with a *note* (e.g. a large swing on a
handful of cases), so a reviewer still sees it. Metrics are checked overall and, with
``per_dataset``, per data set (a regression on one set can hide in the overall mean).

A metric the config names but no case of either run has a value for (``f1`` of a retrieval-only
data set without reference answers) is *not applicable*: reported as ``n/a``, it does not fail.
A metric the runs do not both report is never a silent pass:

- only one run reports it, on the same data and with the metric computed by both (every row
  carries it; e.g. the current run refused every answer, so ``grounded_share`` has no value):
  a failure, the behaviour changed;
- only one run computes it at all, or the runs are over different data (only reachable with
  ``require_same_datasets: false``), or *neither* run computes it (a typo in the config, another
  ``k``): the runs cannot be compared on it, :class:`MetricMismatchError` (invalid input).

Budgets are absolute ceilings on the *current* run only: p95 latency of a stage, cost per query,
degraded share, error share. Latency is deliberately not compared with the baseline: it depends
on the machine and its load and varies by tens of percent run to run, so a relative latency
gate would fail at random; a generous ceiling still catches an order-of-magnitude slowdown.

Comparing runs over different data is not a regression test: with ``require_same_datasets``,
differing data set names, checksums or case ids raise :class:`DatasetMismatchError`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ragkeel.errors import ConfigError, DatasetMismatchError, MetricMismatchError
from ragkeel.evaluation.reports.compare import (
    NEITHER,
    OVERALL,
    Comparison,
    compare,
    dataset_mismatches,
    has_values,
    ops_value,
)
from ragkeel.evaluation.reports.results_view import EvalResults
from ragkeel.observability import names

_EPS = 1e-12  # float slack when comparing a drop with its tolerance
SLIM_KEEP_HITS = 0  # retrieved hits per row kept in a committed baseline (metrics are scored)
SLIM_TEXT_CHARS = 40  # characters of retrieved text / citation snippet kept there


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricRule(_Strict):
    tolerance: float = Field(ge=0, le=1, description="largest acceptable drop of the mean")


class LatencyBudget(_Strict):
    stage: str = names.STAGE_TOTAL
    max: float = Field(gt=0, description="ceiling on the current run's p95, in ms")


class Ceiling(_Strict):
    max: float = Field(ge=0)


class Budgets(_Strict):
    latency_p95_ms: LatencyBudget | None = None
    cost_per_query: Ceiling | None = None
    degraded_share: Ceiling | None = None
    error_share: Ceiling | None = None


class GateConfig(_Strict):
    alpha: float = Field(0.05, gt=0, lt=1)
    metrics: dict[str, MetricRule] = Field(default_factory=dict)
    budgets: Budgets = Budgets()
    require_same_datasets: bool = True
    per_dataset: bool = True


def load_gate_config(path: Path) -> GateConfig:
    """Read ``gate.yaml``; :class:`ConfigError` naming the problem if it is not valid."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return GateConfig.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"invalid gate config {path}: {exc}") from exc


Status = Literal["pass", "fail", "note", "n/a"]


@dataclass(frozen=True, slots=True)
class GateCheck:
    name: str  # metric name or budget name
    scope: str  # "overall", a data set name, or "current run" for budgets
    status: Status
    detail: str


@dataclass(frozen=True, slots=True)
class GateFailure:
    metric: str
    scope: str
    reason: str


@dataclass(frozen=True, slots=True)
class GateResult:
    passed: bool
    failures: list[GateFailure]
    checks: list[GateCheck]
    comparison: Comparison

    @property
    def notes(self) -> list[GateCheck]:
        return [c for c in self.checks if c.status == "note"]

    @property
    def not_applicable(self) -> list[GateCheck]:
        return [c for c in self.checks if c.status == "n/a"]


def evaluate_gate(
    baseline: EvalResults,
    current: EvalResults,
    config: GateConfig,
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> GateResult:
    """Check ``current`` against ``baseline`` under ``config``; every check is in ``checks``,
    the failing ones also in ``failures`` (with the reason to print)."""
    mismatches = dataset_mismatches(baseline, current)
    if config.require_same_datasets and mismatches:
        raise DatasetMismatchError(
            "baseline and current runs used different data: " + "; ".join(mismatches),
            hint="re-run the evaluation on the baseline's data, or update the baseline on "
            "purpose with --update-baseline",
        )
    comparison = compare(
        baseline, current, metrics=list(config.metrics), n_resamples=n_resamples, seed=seed
    )
    scopes = [OVERALL]
    if config.per_dataset:
        scopes += sorted(set(baseline.datasets) & set(current.datasets))
    _check_comparable(baseline, current, list(config.metrics), scopes, bool(mismatches))
    checks = [
        _metric_check(comparison, name, scope, rule.tolerance, config.alpha)
        for scope in scopes
        for name, rule in config.metrics.items()
    ]
    checks += _budget_checks(current.ops, config.budgets)
    failures = [GateFailure(c.name, c.scope, c.detail) for c in checks if c.status == "fail"]
    return GateResult(not failures, failures, checks, comparison)


def _check_comparable(
    a: EvalResults, b: EvalResults, names: list[str], scopes: list[str], other_data: bool
) -> None:
    """:class:`MetricMismatchError` listing every metric the runs cannot be compared on (see
    the module docstring); nothing when the runs compute the same metrics on the same data."""
    problems: list[str] = []
    for name in names:
        computed = (_computes(a, name), _computes(b, name))
        if computed == (False, False):
            problems.append(f"{name}: neither run computes it (check the name and the k)")
            continue
        for scope in scopes:
            reported = (has_values(a, name, scope), has_values(b, name, scope))
            if reported[0] == reported[1]:
                continue
            side, other = ("baseline (A)", 1) if reported[0] else ("current (B)", 0)
            if other_data:
                why = "the runs are over different data"
            elif not computed[other]:
                why = "the other run does not compute it: the runs were evaluated differently"
            else:
                continue  # same data, same metrics: a behaviour change, judged as a failure
            problems.append(f"{name} [{scope}]: only the {side} run reports it ({why})")
    if problems:
        raise MetricMismatchError(
            "the runs cannot be compared on: " + "; ".join(problems),
            hint="gate two runs of the same evaluation config, or update the baseline on "
            "purpose with --update-baseline",
        )


def _computes(run: EvalResults, name: str) -> bool:
    return any(name in row.metrics for row in run.rows.values())


def _metric_check(
    comparison: Comparison, name: str, scope: str, tolerance: float, alpha: float
) -> GateCheck:
    result = comparison.metric(name, scope)
    if result is None:
        missing = next(
            (m for m in comparison.missing if m.metric == name and m.scope == scope), None
        )
        if missing is None or missing.reason == NEITHER:
            where = "to this data set" if scope != OVERALL else "to any case"
            return GateCheck(name, scope, "n/a", f"not applicable {where} in either run")
        return GateCheck(name, scope, "fail", f"metric missing: {missing.reason}")
    drop = -result.delta
    summary = (
        f"{result.mean_a:.4f} -> {result.mean_b:.4f} ({result.delta:+.4f}, "
        f"tolerance {tolerance:.4f}, p={result.p_value:.4f}, n={result.n})"
    )
    if drop <= tolerance + _EPS:
        return GateCheck(name, scope, "pass", summary)
    if result.p_value < alpha:
        return GateCheck(name, scope, "fail", f"significant drop beyond tolerance: {summary}")
    return GateCheck(
        name, scope, "note", f"drop beyond tolerance but not significant at {alpha}: {summary}"
    )


def _budget_checks(ops: Mapping[str, Any], budgets: Budgets) -> list[GateCheck]:
    ceilings: list[tuple[str, float | None, float]] = []
    if budgets.latency_p95_ms is not None:
        stage = budgets.latency_p95_ms.stage
        value = ops_value(ops, "latency_ms", stage, "p95")
        ceilings.append((f"latency p95 {stage} (ms)", value, budgets.latency_p95_ms.max))
    for name in ("cost_per_query", "degraded_share", "error_share"):
        ceiling: Ceiling | None = getattr(budgets, name)
        if ceiling is not None:
            ceilings.append((name, ops_value(ops, name), ceiling.max))
    return [_ceiling_check(name, value, limit) for name, value, limit in ceilings]


def _ceiling_check(name: str, value: float | None, limit: float) -> GateCheck:
    scope = "current run"
    if value is None:
        return GateCheck(name, scope, "fail", "budget set but the current run does not report it")
    if value > limit + _EPS:
        return GateCheck(name, scope, "fail", f"{value:.4g} exceeds the budget {limit:.4g}")
    return GateCheck(name, scope, "pass", f"{value:.4g} within the budget {limit:.4g}")


def slim_results(
    raw: Mapping[str, Any],
    *,
    keep_hits: int = SLIM_KEEP_HITS,
    keep_chars: int = SLIM_TEXT_CHARS,
) -> dict[str, Any]:
    """A copy of a results document small enough to commit as a baseline: each row keeps its
    top ``keep_hits`` retrieved hits, and retrieved texts and citation snippets are cut to
    ``keep_chars`` characters (cut, not removed, so the copy still follows the results
    contract). Per-row metrics, answers, ids, checksums and aggregates are kept whole: they are
    everything the gate and a comparison read (retrieval metrics were scored at run time)."""
    out: dict[str, Any] = copy.deepcopy(dict(raw))
    for row in out.get("rows", []):
        row["retrieved"] = (row.get("retrieved") or [])[:keep_hits]
        for hit in row["retrieved"]:
            hit["text"] = str(hit.get("text", ""))[:keep_chars]
        answer = row.get("answer")
        if isinstance(answer, dict):
            for citation in answer.get("citations") or []:
                citation["snippet"] = str(citation.get("snippet", ""))[:keep_chars]
    return out

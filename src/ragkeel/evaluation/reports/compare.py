"""Compare two evaluation runs (``results.json``, schema ``ragkeel.eval.results/1``): per-metric
means, deltas with a 95 % bootstrap interval and a paired sign-flip p-value, operations side by
side, and the cases that changed most.

Rows are matched by ``(dataset, id)``. Every metric is "higher is better" and ``delta`` is
``B - A``, so with A the baseline a negative delta is a drop. Means are taken over the *paired*
rows (both sides ran the case and the metric is not null on either), so mean, delta, interval and
p-value all describe the same queries; ``n_dropped`` counts pairs with a null on exactly one
side (null on both means "not applicable", e.g. retrieval metrics of a case without qrels). A
metric present on one side only is listed in ``missing`` (it never silently "passes").
Rows present on one side only are listed in ``only_in_a`` / ``only_in_b``.

Files are read with :func:`ragkeel.evaluation.reports.results_view.load_results`; tables for
people come from :mod:`ragkeel.evaluation.reports.compare_table`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ragkeel.evaluation.metrics.stats import bootstrap_ci, complete_pairs, paired_permutation_test
from ragkeel.evaluation.reports.results_view import EvalResults, ResultRow

OVERALL = "overall"
NEITHER = "in neither run"


@dataclass(frozen=True, slots=True)
class MetricComparison:
    metric: str
    scope: str  # "overall" or a data set name
    mean_a: float
    mean_b: float
    delta: float  # mean_b - mean_a over the n paired rows
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    n_dropped: int


@dataclass(frozen=True, slots=True)
class MissingMetric:
    metric: str
    scope: str
    reason: str


@dataclass(frozen=True, slots=True)
class OpsRow:
    name: str
    a: float | None
    b: float | None


@dataclass(frozen=True, slots=True)
class ChangedCase:
    metric: str
    dataset: str
    id: str
    question: str
    score_a: float
    score_b: float
    answer_a: str
    answer_b: str

    @property
    def delta(self) -> float:
        return self.score_b - self.score_a


@dataclass(frozen=True, slots=True)
class Comparison:
    name_a: str
    name_b: str
    metrics: tuple[MetricComparison, ...]
    missing: tuple[MissingMetric, ...]
    ops: tuple[OpsRow, ...]
    changed: tuple[ChangedCase, ...]
    only_in_a: tuple[tuple[str, str], ...]
    only_in_b: tuple[tuple[str, str], ...]
    dataset_mismatches: tuple[str, ...]

    def metric(self, name: str, scope: str = OVERALL) -> MetricComparison | None:
        return next((m for m in self.metrics if m.metric == name and m.scope == scope), None)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for case, raw in zip(self.changed, out["changed"], strict=True):
            raw["delta"] = case.delta
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def compare(
    a: EvalResults,
    b: EvalResults,
    *,
    metrics: Collection[str] | None = None,
    top_changed: int = 5,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Compare run ``a`` (baseline) with run ``b`` (candidate); ``metrics`` limits the metrics
    compared (default: every metric either side reports). Deterministic for a given ``seed``."""
    names = list(metrics) if metrics is not None else _metric_names(a, b)
    scopes = [OVERALL, *sorted(set(a.datasets) & set(b.datasets))]
    compared: list[MetricComparison] = []
    missing: list[MissingMetric] = []
    for scope in scopes:
        keys = [k for k in a.rows if k in b.rows and scope in (OVERALL, k[0])]
        for name in names:
            outcome = _compare_metric(a, b, name, scope, keys, confidence, n_resamples, seed)
            if isinstance(outcome, MetricComparison):
                compared.append(outcome)
            elif outcome is not None and (metrics is not None or outcome.reason != NEITHER):
                missing.append(outcome)  # "in neither run" only matters when it was asked for
    return Comparison(
        name_a=a.name,
        name_b=b.name,
        metrics=tuple(compared),
        missing=tuple(missing),
        ops=ops_rows(a.ops, b.ops),
        changed=tuple(_changed_cases(a, b, names, top_changed)),
        only_in_a=tuple(k for k in a.rows if k not in b.rows),
        only_in_b=tuple(k for k in b.rows if k not in a.rows),
        dataset_mismatches=tuple(dataset_mismatches(a, b)),
    )


def _metric_names(a: EvalResults, b: EvalResults) -> list[str]:
    seen: dict[str, None] = {}
    for run in (a, b):
        for row in run.rows.values():
            seen.update(dict.fromkeys(row.metrics))
    return list(seen)


def has_values(run: EvalResults, name: str, scope: str) -> bool:
    """Whether any row of ``run`` in ``scope`` (OVERALL or a data set) has a value of ``name``."""
    return any(
        row.metrics.get(name) is not None
        for key, row in run.rows.items()
        if scope in (OVERALL, key[0])
    )


def _compare_metric(
    a: EvalResults,
    b: EvalResults,
    name: str,
    scope: str,
    keys: list[tuple[str, str]],
    confidence: float,
    n_resamples: int,
    seed: int,
) -> MetricComparison | MissingMetric | None:
    in_a, in_b = has_values(a, name, scope), has_values(b, name, scope)
    if not in_a and not in_b:
        return None if scope != OVERALL else MissingMetric(name, scope, NEITHER)
    if not (in_a and in_b):
        side = "baseline (A)" if in_a else "current (B)"
        return MissingMetric(name, scope, f"only the {side} run reports it")
    pairs = [(a.rows[k].metrics.get(name), b.rows[k].metrics.get(name)) for k in keys]
    pairs = [p for p in pairs if p != (None, None)]  # n/a on both sides: not a dropped pair
    scores_a, scores_b = [p[0] for p in pairs], [p[1] for p in pairs]
    xs, ys, _ = complete_pairs(scores_a, scores_b)
    if len(xs) == 0:
        return MissingMetric(name, scope, "no case has a value in both runs")
    test = paired_permutation_test(scores_a, scores_b, n_resamples=n_resamples, seed=seed)
    ci = bootstrap_ci(list(ys - xs), confidence=confidence, n_resamples=n_resamples, seed=seed)
    return MetricComparison(
        name,
        scope,
        test.mean_a,
        test.mean_b,
        test.delta,
        ci.low,
        ci.high,
        test.p_value,
        test.n,
        test.n_dropped,
    )


def _changed_cases(a: EvalResults, b: EvalResults, names: list[str], top: int) -> list[ChangedCase]:
    out: list[ChangedCase] = []
    for name in names:
        cases: list[ChangedCase] = []
        for key, row_a in a.rows.items():
            row_b = b.rows.get(key)
            if row_b is None:
                continue
            sa, sb = row_a.metrics.get(name), row_b.metrics.get(name)
            if sa is None or sb is None or sa == sb:
                continue
            cases.append(_changed(name, row_a, row_b, sa, sb))
        cases.sort(key=lambda c: (-abs(c.delta), c.dataset, c.id))
        out.extend(cases[:top])
    return out


def _changed(name: str, row_a: ResultRow, row_b: ResultRow, sa: float, sb: float) -> ChangedCase:
    return ChangedCase(
        name, row_a.dataset, row_a.id, row_a.question, sa, sb, row_a.answer, row_b.answer
    )


def dataset_mismatches(a: EvalResults, b: EvalResults) -> list[str]:
    """Why ``a`` and ``b`` were not run on the same data (empty when they were): data set names,
    checksums and case ids must all agree for a comparison to be a regression test."""
    problems: list[str] = []
    for name in sorted(set(a.datasets) | set(b.datasets)):
        if name not in b.datasets or name not in a.datasets:
            side = "baseline" if name in a.datasets else "current"
            problems.append(f"data set {name!r} is only in the {side} run")
        elif a.datasets[name] != b.datasets[name]:
            problems.append(
                f"data set {name!r} changed: sha256 {a.datasets[name][:12]}… (baseline) vs "
                f"{b.datasets[name][:12]}… (current)"
            )
    only_a = [k for k in a.rows if k not in b.rows]
    only_b = [k for k in b.rows if k not in a.rows]
    for side, keys in (("baseline", only_a), ("current", only_b)):
        if keys:
            shown = ", ".join(f"{d}/{i}" for d, i in keys[:5])
            more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
            problems.append(f"{len(keys)} case(s) only in the {side} run: {shown}{more}")
    return problems


def ops_rows(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[OpsRow, ...]:
    """Operations side by side: latency p50/p95 per stage, tokens and cost per query, shares."""
    stages = dict.fromkeys([*a.get("latency_ms", {}), *b.get("latency_ms", {})])
    rows = [
        OpsRow(
            f"latency {stat} {stage} (ms)",
            *(ops_value(o, "latency_ms", stage, stat) for o in (a, b)),
        )
        for stage in stages
        for stat in ("p50", "p95")
    ]
    for kind in ("prompt", "completion"):
        rows.append(
            OpsRow(
                f"{kind} tokens/query", *(ops_value(o, "tokens_per_query", kind) for o in (a, b))
            )
        )
    for name in ("cost_per_query", "cost_total", "degraded_share", "error_share", "n"):
        rows.append(OpsRow(name.replace("_", " "), ops_value(a, name), ops_value(b, name)))
    return tuple(rows)


def ops_value(ops: Mapping[str, Any], *path: str) -> float | None:
    """A number inside ``aggregates.ops`` by key path, or None when absent or not a number."""
    node: Any = ops
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return None
    return float(node)

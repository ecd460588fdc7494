"""The alert rules: each one a small function from the current window, the reference window
(the ``reference_window_s`` before it) and its threshold to a ``RuleResult``.

=====================  ========  ============================================================
rule                   severity  breaches when (the setting under ``monitor.rules``)
=====================  ========  ============================================================
latency_p95            warning   p95 of total latency > ``p95_latency_ms``
latency_regression     warning   p95 now / p95 in the reference > ``latency_regression_ratio``
error_share            critical  share of requests with outcome error > ``error_share``
degraded_share         warning   share of degraded answers > ``degraded_share``
abstention_rate        warning   share of "cannot answer" > ``abstention_rate``
cost_per_answer        warning   USD per answered request > ``cost_per_answer_usd``
cost_spike             warning   cost per answer now / reference > ``cost_spike_ratio``
spend_per_day          critical  the cost ledger's spend today (UTC) > ``spend_per_day_usd``
score_drift            warning   top retrieval scores: KS p < ``drift_p_value`` and
                                 D >= ``drift_min_ks`` (``stats.py`` argues both)
grounded_drift         warning   grounded share fell by >= ``grounded_min_drop`` with
                                 Fisher's one-sided p < ``drift_p_value``
=====================  ========  ============================================================

A window with fewer than ``min_samples`` requests (or, for a rule over a subset, fewer than
``min_samples`` of that subset: latencies, scores, checked answers) gives ``no_data``, never a
breach: a quiet hour cannot fire on three requests. A rule whose threshold is None is ``off``.
``spend_per_day`` is a running total, not a sample, and needs no minimum.

The status ``breach`` is one evaluation's verdict; whether an alert fires or resolves is
``state.py``'s decision (``fire_after`` / ``resolve_after`` evaluations in a row).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from ragkeel.observability.monitor.stats import grounded_drop, percentile, score_drift
from ragkeel.observability.monitor.windows import Window
from ragkeel.settings import MonitorRuleSettings

Severity = Literal["warning", "critical"]
Status = Literal["ok", "breach", "no_data", "off"]

LATENCY_P95 = "latency_p95"
LATENCY_REGRESSION = "latency_regression"
ERROR_SHARE = "error_share"
DEGRADED_SHARE = "degraded_share"
ABSTENTION_RATE = "abstention_rate"
COST_PER_ANSWER = "cost_per_answer"
COST_SPIKE = "cost_spike"
SPEND_PER_DAY = "spend_per_day"
SCORE_DRIFT = "score_drift"
GROUNDED_DRIFT = "grounded_drift"
SEVERITY: Mapping[str, Severity] = {
    LATENCY_P95: "warning",
    LATENCY_REGRESSION: "warning",
    ERROR_SHARE: "critical",
    DEGRADED_SHARE: "warning",
    ABSTENTION_RATE: "warning",
    COST_PER_ANSWER: "warning",
    COST_SPIKE: "warning",
    SPEND_PER_DAY: "critical",
    SCORE_DRIFT: "warning",
    GROUNDED_DRIFT: "warning",
}
RULES: tuple[str, ...] = tuple(SEVERITY)


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: str
    status: Status
    value: float | None = None  # what was compared (for drift: the KS D / the share drop)
    threshold: float | None = None
    samples: int = 0  # requests (or scores, answers) in the current window the value rests on
    summary: str = ""
    details: Mapping[str, float] = field(default_factory=dict)  # p-values, PSI, means...

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.rule]

    @property
    def breached(self) -> bool:
        return self.status == "breach"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "severity": self.severity, "details": dict(self.details)}


def evaluate(
    rules: MonitorRuleSettings,
    current: Window,
    reference: Window,
    *,
    min_samples: int,
    spent_today: float | None = None,
) -> list[RuleResult]:
    """Every rule's verdict, in ``RULES`` order. ``spent_today``: None when not known."""
    n = min_samples
    return [
        _latency_p95(rules.p95_latency_ms, current, n),
        _latency_regression(rules.latency_regression_ratio, current, reference, n),
        _share(ERROR_SHARE, "error", rules.error_share, current, n),
        _share(DEGRADED_SHARE, "degraded", rules.degraded_share, current, n),
        _share(ABSTENTION_RATE, "cannot_answer", rules.abstention_rate, current, n),
        _cost_per_answer(rules.cost_per_answer_usd, current, n),
        _cost_spike(rules.cost_spike_ratio, current, reference, n),
        _spend_per_day(rules.spend_per_day_usd, spent_today),
        _score_drift(rules, current, reference, n),
        _grounded_drift(rules, current, reference, n),
    ]


def _above(rule: str, value: float, threshold: float, samples: int, summary: str) -> RuleResult:
    status: Status = "breach" if value > threshold else "ok"
    return RuleResult(rule, status, value, threshold, samples, summary)


def _latency_p95(target: float | None, w: Window, n: int) -> RuleResult:
    if target is None:
        return RuleResult(LATENCY_P95, "off")
    p95 = percentile(w.total_ms, 95)
    if p95 is None or len(w.total_ms) < n:
        return RuleResult(LATENCY_P95, "no_data", threshold=target, samples=len(w.total_ms))
    summary = f"p95 total latency {p95:,.0f} ms (target {target:,.0f} ms)"
    return _above(LATENCY_P95, p95, target, len(w.total_ms), summary)


def _latency_regression(ratio: float | None, w: Window, ref: Window, n: int) -> RuleResult:
    if ratio is None:
        return RuleResult(LATENCY_REGRESSION, "off")
    now, before = percentile(w.total_ms, 95), percentile(ref.total_ms, 95)
    if now is None or before is None or before <= 0 or min(len(w.total_ms), len(ref.total_ms)) < n:
        return RuleResult(LATENCY_REGRESSION, "no_data", threshold=ratio, samples=len(w.total_ms))
    summary = (
        f"p95 total latency {now:,.0f} ms, {now / before:.2f}x the reference's {before:,.0f} ms"
    )
    result = _above(LATENCY_REGRESSION, now / before, ratio, len(w.total_ms), summary)
    return replace(result, details={"p95_ms": now, "reference_p95_ms": before})


def _share(rule: str, outcome: str, limit: float | None, w: Window, n: int) -> RuleResult:
    if limit is None:
        return RuleResult(rule, "off")
    if w.requests < n:
        return RuleResult(rule, "no_data", threshold=limit, samples=w.requests)
    share = w.share(outcome)
    summary = f"{share:.1%} of {w.requests} requests {outcome} (limit {limit:.1%})"
    return _above(rule, share, limit, w.requests, summary)


def _cost_per_answer(target: float | None, w: Window, n: int) -> RuleResult:
    if target is None:
        return RuleResult(COST_PER_ANSWER, "off")
    value, answered = w.cost_per_answer, w.outcomes["answered"] + w.outcomes["degraded"]
    if value is None or answered < n:
        return RuleResult(COST_PER_ANSWER, "no_data", threshold=target, samples=answered)
    summary = f"USD {value:.6f} per answer (target {target:.6f})"
    return _above(COST_PER_ANSWER, value, target, answered, summary)


def _cost_spike(ratio: float | None, w: Window, ref: Window, n: int) -> RuleResult:
    if ratio is None:
        return RuleResult(COST_SPIKE, "off")
    now, before = w.cost_per_answer, ref.cost_per_answer
    answered = w.outcomes["answered"] + w.outcomes["degraded"]
    ref_answered = ref.outcomes["answered"] + ref.outcomes["degraded"]
    if now is None or before is None or before <= 0 or min(answered, ref_answered) < n:
        return RuleResult(COST_SPIKE, "no_data", threshold=ratio, samples=answered)
    summary = f"USD {now:.6f} per answer, {now / before:.2f}x the reference's {before:.6f}"
    result = _above(COST_SPIKE, now / before, ratio, answered, summary)
    return replace(result, details={"cost_per_answer": now, "reference_cost_per_answer": before})


def _spend_per_day(target: float | None, spent: float | None) -> RuleResult:
    if target is None:
        return RuleResult(SPEND_PER_DAY, "off")
    if spent is None:
        return RuleResult(SPEND_PER_DAY, "no_data", threshold=target)
    summary = f"USD {spent:.4f} spent today (UTC; target {target:.4f})"
    return _above(SPEND_PER_DAY, spent, target, 0, summary)


def _score_drift(rules: MonitorRuleSettings, w: Window, ref: Window, n: int) -> RuleResult:
    if not rules.score_drift:
        return RuleResult(SCORE_DRIFT, "off")
    if min(len(w.top_scores), len(ref.top_scores)) < n:
        return RuleResult(
            SCORE_DRIFT, "no_data", threshold=rules.drift_min_ks, samples=len(w.top_scores)
        )
    d = score_drift(w.top_scores, ref.top_scores)
    summary = (
        f"top retrieval scores moved: KS D {d.statistic:.3f} (p {d.p_value:.2g}), mean "
        f"{d.current_mean:.3f} vs {d.reference_mean:.3f}, PSI {d.psi:.3f}"
    )
    stats = {"psi": d.psi, "mean": d.current_mean, "reference_mean": d.reference_mean}
    result = RuleResult(SCORE_DRIFT, "ok", d.statistic, rules.drift_min_ks, len(w.top_scores))
    return _tested(result, d.p_value, rules.drift_p_value, len(ref.top_scores), summary, stats)


def _grounded_drift(rules: MonitorRuleSettings, w: Window, ref: Window, n: int) -> RuleResult:
    if not rules.grounded_drift:
        return RuleResult(GROUNDED_DRIFT, "off")
    if min(w.checked, ref.checked) < n:
        return RuleResult(
            GROUNDED_DRIFT, "no_data", threshold=rules.grounded_min_drop, samples=w.checked
        )
    d = grounded_drop((w.grounded, w.checked), (ref.grounded, ref.checked))
    summary = (
        f"grounded share {d.current:.1%} vs {d.reference:.1%} in the reference "
        f"(Fisher p {d.p_value:.2g})"
    )
    stats = {"share": d.current, "reference_share": d.reference}
    result = RuleResult(GROUNDED_DRIFT, "ok", d.drop, rules.grounded_min_drop, w.checked)
    return _tested(result, d.p_value, rules.drift_p_value, ref.checked, summary, stats)


def _tested(
    effect: RuleResult,
    p_value: float,
    alpha: float,
    reference_samples: int,
    summary: str,
    stats: Mapping[str, float],
) -> RuleResult:
    """A drift rule's verdict: a breach needs both significance (``p_value < alpha``) and an
    effect at least the threshold (``effect.value >= effect.threshold``; ``stats.py`` says
    why both)."""
    value, threshold = effect.value or 0.0, effect.threshold or 0.0  # both set by the callers
    breach = p_value < alpha and value >= threshold
    details = {
        "p_value": p_value,
        "p_value_threshold": alpha,
        "reference_samples": float(reference_samples),
        **stats,
    }
    return replace(effect, status="breach" if breach else "ok", summary=summary, details=details)

"""A :class:`~ragkeel.evaluation.reports.compare.Comparison` as rich tables for the terminal: metric
deltas (significant changes coloured), metrics missing on one side, operations side by side,
and the cases that changed most with both answers. Pure presentation: no numbers are computed
here that ``Comparison.to_dict`` does not also carry."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ragkeel.evaluation.reports.compare import Comparison, MetricComparison

SIGNIFICANT = 0.05  # colouring only; the gate has its own alpha
_CLIP = 70


def render_table(comparison: Comparison, *, alpha: float = SIGNIFICANT) -> Group:
    """Everything in ``comparison``, in reading order, as one renderable."""
    parts: list[RenderableType] = [
        Text(f"A = {comparison.name_a or '?'}   B = {comparison.name_b or '?'}", style="bold")
    ]
    parts += [Text(f"warning: {p}", style="yellow") for p in comparison.dataset_mismatches]
    parts.append(_metrics_table(comparison, alpha))
    if comparison.missing:
        missing = Table(title="Metrics not comparable", title_justify="left")
        for column in ("scope", "metric", "why"):
            missing.add_column(column)
        for m in comparison.missing:
            missing.add_row(Text(m.scope), Text(m.metric), Text(m.reason))
        parts.append(missing)
    parts.append(_ops_table(comparison))
    if comparison.changed:
        parts.append(_changed_table(comparison))
    return Group(*parts)


def _metrics_table(comparison: Comparison, alpha: float) -> Table:
    table = Table(title="Metrics (B - A, paired)", title_justify="left")
    for column in ("scope", "metric", "A", "B", "delta", "95% CI", "p", "n"):
        table.add_column(column, justify="left" if column in ("scope", "metric") else "right")
    for m in comparison.metrics:
        table.add_row(
            Text(m.scope),
            Text(m.metric),
            f"{m.mean_a:.4f}",
            f"{m.mean_b:.4f}",
            Text(f"{m.delta:+.4f}", style=_delta_style(m, alpha)),
            Text(f"[{m.ci_low:+.4f}, {m.ci_high:+.4f}]"),
            f"{m.p_value:.4f}",
            f"{m.n}" + (f" (-{m.n_dropped})" if m.n_dropped else ""),
        )
    return table


def _delta_style(m: MetricComparison, alpha: float) -> str:
    if m.p_value >= alpha or m.delta == 0:
        return ""
    return "bold green" if m.delta > 0 else "bold red"


def _ops_table(comparison: Comparison) -> Table:
    table = Table(title="Operations", title_justify="left")
    for column in ("", "A", "B", "delta"):
        table.add_column(column, justify="left" if not column else "right")
    for row in comparison.ops:
        delta = "" if row.a is None or row.b is None else _num(row.b - row.a, signed=True)
        table.add_row(row.name, _num(row.a), _num(row.b), delta)
    return table


def _changed_table(comparison: Comparison) -> Table:
    table = Table(title="Cases that changed most", title_justify="left")
    for column in ("metric", "case", "A -> B", "question", "answer A", "answer B"):
        table.add_column(column, overflow="fold")
    for c in comparison.changed:
        table.add_row(
            Text(c.metric),
            Text(f"{c.dataset}/{c.id}"),
            f"{c.score_a:.2f} -> {c.score_b:.2f}",
            _clip(c.question),
            _clip(c.answer_a),
            _clip(c.answer_b),
        )
    return table


def _num(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    if value == int(value) and abs(value) >= 1:
        return f"{value:+.0f}" if signed else f"{value:.0f}"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _clip(text: str) -> Text:
    """One line of at most ``_CLIP`` characters, as plain text (answers may contain "[...]",
    which must not be read as rich markup)."""
    text = " ".join(text.split())
    return Text(text if len(text) <= _CLIP else text[: _CLIP - 1] + "…")

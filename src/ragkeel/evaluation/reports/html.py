"""The evaluation report: ONE self-contained HTML file rendered from ``results.json``.

No external URL anywhere: the plots are matplotlib figures embedded as base64 PNG (``data:``
URIs, modest dpi: 500 rows stay far below 1 MB, where SVG paths would not), the styles are
inline. All text goes through Jinja2 autoescaping, so a question containing ``<script>`` is
shown, not run. Sections: headline metrics (overall and per data set), metric distributions,
latency histograms (total and per stage), per-tag table, abstention, operations, and the worst
cases of each data set with their answer, references, retrieved context and trace id.

The worst cases of a data set are ranked by its *primary* metric: the first of ``judge``,
``f1``, ``ndcg@K``, ``grounded_share``, ``correct_abstention`` that has values there; failed
cases come first.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape

from ragkeel.errors import ConfigError
from ragkeel.evaluation.reports.results import EvalResults, MetricMean, Row
from ragkeel.observability import names

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT_FILE = "report.html"
WORST_PER_DATASET = 5
DPI = 72
_HEADLINE = ("ndcg@{k}", "recall@{k}", "mrr@{k}", "hit@{k}", "em", "f1", "contains",
             "answered", "correct_abstention", "citation_validity", "grounded_share",
             "format_ok", "judge")  # fmt: skip
_DISTRIBUTIONS = ("ndcg@{k}", "recall@{k}", "f1", "grounded_share", "citation_validity", "judge")
_PRIMARY = ("judge", "f1", "ndcg@{k}", "grounded_share", "correct_abstention")
_STAGES = (names.STAGE_TOTAL, *names.OPS_STAGES[:-1])  # total first

_ENV = Environment(
    loader=PackageLoader("ragkeel.evaluation.reports", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@functools.cache
def require_plots() -> type[Figure]:
    """matplotlib's ``Figure``, on the non-GUI backend. matplotlib is the ``eval`` extra: it is
    imported here, on first use, so that the rest of ragkeel (the CLI included) runs without
    it; ``ConfigError`` with the install hint when it is missing (``eval run`` asks first,
    before any case runs)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # never a GUI backend, also when pyplot is imported elsewhere
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ConfigError(
            "the HTML evaluation report needs matplotlib, which is not installed",
            hint="pip install 'ragkeel[eval]'",
        ) from exc
    return Figure


def render_report(results: EvalResults) -> str:
    """The report for ``results`` as one HTML document."""
    k = int(results["config"].get("k", 10))
    rows = results["rows"]
    aggregates = results["aggregates"]
    present = set(aggregates["overall"])
    headline = [m.format(k=k) for m in _HEADLINE if m.format(k=k) in present]
    context: dict[str, Any] = {
        "r": results,
        "headline": headline,
        "columns": [("overall", aggregates["overall"]), *aggregates["by_dataset"].items()],
        "tag_metrics": headline,
        "plots": _plots(rows, [m.format(k=k) for m in _DISTRIBUTIONS if m.format(k=k) in present]),
        "worst": {name: _worst(rs, k, WORST_PER_DATASET) for name, rs in _by_dataset(rows).items()},
        "settings_json": json.dumps(results["settings"], indent=2, sort_keys=True),
        "config_json": json.dumps(results["config"], indent=2, sort_keys=True),
        "fmt": _fmt,
    }
    return _ENV.get_template("report.html.j2").render(context)


def write_report(path: Path, results: EvalResults) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(results), encoding="utf-8")


def _fmt(value: object, digits: int = 3) -> str:
    """A number for a table cell: fixed digits, ``–`` for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _by_dataset(rows: Sequence[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row["dataset"], []).append(row)
    return out


def primary_metric(rows: Sequence[Row], k: int) -> str | None:
    """The metric the worst cases of ``rows`` are ranked by (see the module docstring)."""
    for name in (m.format(k=k) for m in _PRIMARY):
        if any(r["metrics"].get(name) is not None for r in rows):
            return name
    return None


def _worst(rows: Sequence[Row], k: int, n: int) -> dict[str, Any]:
    metric = primary_metric(rows, k)

    def badness(row: Row) -> tuple[int, float, str]:
        value = row["metrics"].get(metric) if metric else None
        return (0 if row["error"] else 1, math.inf if value is None else value, row["id"])

    return {"metric": metric, "rows": sorted(rows, key=badness)[:n]}


# -- plots -------------------------------------------------------------------------------------
def _plots(rows: Sequence[Row], metrics: Sequence[str]) -> list[dict[str, str]]:
    plots = []
    if metrics:
        plots.append(
            {"title": "Metric distributions (per query)", "src": _histograms(rows, metrics)}
        )
    latency = _latency_histograms(rows)
    if latency:
        plots.append({"title": "Latency per stage (ms)", "src": latency})
    return plots


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _grid(n: int) -> tuple[Figure, list[Any]]:
    cols = min(3, n)
    nrows = math.ceil(n / cols)
    fig = require_plots()(figsize=(3.6 * cols, 2.6 * nrows))
    return fig, [fig.add_subplot(nrows, cols, i + 1) for i in range(n)]


def _histograms(rows: Sequence[Row], metrics: Sequence[str]) -> str:
    fig, axes = _grid(len(metrics))
    for ax, name in zip(axes, metrics, strict=True):
        values = [v for r in rows if (v := r["metrics"].get(name)) is not None]
        ax.hist(values, bins=10, range=(0.0, 1.0), color="#4878a8", edgecolor="white")
        mean = sum(values) / len(values) if values else float("nan")
        ax.set_title(f"{name}  (mean {mean:.3f}, n={len(values)})", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return _png(fig)


def _latency_histograms(rows: Sequence[Row]) -> str | None:
    ran = [r for r in rows if r["error"] is None]
    stages = [s for s in _STAGES if any(s in r["latency_ms"] for r in ran)]
    if not stages:
        return None
    fig, axes = _grid(len(stages))
    for ax, stage in zip(axes, stages, strict=True):
        values = [r["latency_ms"][stage] for r in ran if stage in r["latency_ms"]]
        ax.hist(values, bins=20, color="#d08040", edgecolor="white")
        ax.set_title(f"{stage}  (n={len(values)})", fontsize=9)
        ax.set_xlabel("ms", fontsize=8)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return _png(fig)


def metric_cell(table: dict[str, MetricMean], name: str) -> str:
    """``mean (n)`` of ``name`` in an aggregates table, ``–`` when absent."""
    entry = table.get(name)
    return f"{entry['mean']:.3f} ({entry['n']})" if entry else "–"


_ENV.globals["metric_cell"] = metric_cell

"""Charts as inline SVG, laid out here (numbers only) and drawn by ``templates/charts.html.j2``:
no JavaScript, nothing fetched, and the strict Content-Security-Policy holds (SVG geometry is
attributes, colours are CSS classes from ``static/ui.css``).

``LineChart``: one or more series over the same x labels (days), a y axis from 0 to a rounded
maximum with 4 ticks; a missing value (None) breaks the line. ``Waterfall``: one bar per stage
of a trace, placed by ``stage_bars``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ragkeel.observability import names

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28
TICKS = 4


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    values: tuple[float | None, ...]
    css: str = "s0"  # the CSS class that colours it


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    value: float
    label: str  # the x label (for the tooltip)


@dataclass(frozen=True, slots=True)
class Line:
    series: Series
    paths: tuple[str, ...]  # SVG path data, one per unbroken run
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True, slots=True)
class LineChart:
    title: str
    unit: str
    lines: tuple[Line, ...]
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    width: int = WIDTH
    height: int = HEIGHT
    empty: bool = False

    @property
    def plot_left(self) -> int:
        return LEFT

    @property
    def plot_right(self) -> int:
        return self.width - RIGHT

    @property
    def plot_bottom(self) -> int:
        return self.height - BOTTOM


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is >= ``value`` (1 for nothing)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value))


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.3g}"
    return f"{value:.2g}"


def line_chart(
    title: str, unit: str, x_labels: Sequence[str], series: Sequence[Series]
) -> LineChart:
    values = [v for s in series for v in s.values if v is not None]
    top = nice_max(max(values, default=0.0))
    n = len(x_labels)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w * (i + 0.5) / n if n else 0.0)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    lines = []
    for s in series:
        points = tuple(
            Point(round(x(i), 1), round(y(v), 1), v, x_labels[i])
            for i, v in enumerate(s.values)
            if v is not None
        )
        runs: list[list[str]] = []
        previous = None
        for i, v in enumerate(s.values):
            if v is None:
                previous = None
                continue
            if previous is None:
                runs.append([])
            runs[-1].append(f"{'M' if previous is None else 'L'}{x(i):.1f},{y(v):.1f}")
            previous = i
        lines.append(Line(s, tuple(" ".join(r) for r in runs), points))
    y_ticks = tuple(
        Tick(round(y(top * i / TICKS), 1), fmt(top * i / TICKS)) for i in range(TICKS + 1)
    )
    step = max(1, math.ceil(n / 8))  # at most ~8 x labels
    x_ticks = tuple(Tick(round(x(i), 1), x_labels[i]) for i in range(0, n, step))
    return LineChart(title, unit, tuple(lines), y_ticks, x_ticks, empty=not values)


@dataclass(frozen=True, slots=True)
class Bar:
    stage: str
    ms: float
    x: float
    width: float
    y: float


@dataclass(frozen=True, slots=True)
class Waterfall:
    bars: tuple[Bar, ...]
    total_ms: float
    width: int = WIDTH
    row: int = 22

    @property
    def height(self) -> int:
        return self.row * len(self.bars) + 24


LABEL_W = 110

# (stage, the stages it starts after): a trace keeps each stage's duration, not its start, so
# the bars are laid out from the flow's order (keyword and dense search run side by side after
# the query embedding; first_token and total are measured from the request's start)
_AFTER: Mapping[str, tuple[str, ...]] = {
    names.STAGE_RETRIEVE: (),
    names.STAGE_EMBED: (),
    names.STAGE_KEYWORD: (names.STAGE_EMBED,),
    names.STAGE_DENSE: (names.STAGE_EMBED,),
    names.STAGE_FUSE: (names.STAGE_EMBED, "max(keyword,dense)"),
    names.STAGE_GATE: (names.STAGE_RETRIEVE,),
    names.STAGE_PACK: (names.STAGE_RETRIEVE, names.STAGE_GATE),
    names.STAGE_QUEUE: (names.STAGE_RETRIEVE, names.STAGE_GATE, names.STAGE_PACK),
    names.STAGE_PROMPT_EVAL: (
        names.STAGE_RETRIEVE,
        names.STAGE_GATE,
        names.STAGE_PACK,
        names.STAGE_QUEUE,
    ),
    names.STAGE_GENERATE: (names.STAGE_RETRIEVE, names.STAGE_GATE, names.STAGE_PACK),
    names.STAGE_FIRST_TOKEN: (),
    names.STAGE_TOTAL: (),
}


def _start(stage: str, ms: Mapping[str, float]) -> float:
    start = 0.0
    for before in _AFTER.get(stage, ()):
        if before == "max(keyword,dense)":
            start += max(ms.get(names.STAGE_KEYWORD, 0.0), ms.get(names.STAGE_DENSE, 0.0))
        else:
            start += ms.get(before, 0.0)
    return start


def waterfall(latency_ms: Mapping[str, float]) -> Waterfall:
    """One bar per recorded stage, in the flow's order, then any stage this code does not
    know (at 0)."""
    ordered = [s for s in names.STAGES if s in latency_ms]
    ordered += sorted(s for s in latency_ms if s not in names.STAGES)
    spans = {s: (_start(s, latency_ms), float(latency_ms[s])) for s in ordered}
    end = max((a + d for a, d in spans.values()), default=0.0) or 1.0
    plot = WIDTH - LABEL_W - RIGHT - 70
    bars = []
    for row, stage in enumerate(ordered):
        start, ms = spans[stage]
        x = LABEL_W + plot * start / end
        bars.append(Bar(stage, ms, round(x, 1), round(max(plot * ms / end, 1.0), 1), row * 22 + 4))
    return Waterfall(tuple(bars), end)

"""The PDF parser's fast path with pypdfium2 (issue 14): page text without pdfminer's layout,
the cheap "does this page hold a ruled table?" test, and the cover-page title.

- ``has_ruled_table(page)``: the boxes of the page's path objects (descending into form
  XObjects) become the edges pdfplumber's table finder would see (every box gives its four
  sides, as pdfplumber does for rectangles), and pdfplumber's own ``TableFinder`` (the default
  "lines" strategy of ``find_tables()``) runs on them alone, without the text: True when it finds
  a table of two rows or more. Only such pages need pdfplumber (a one-row "table" joins the
  text flow anyway). On the SEC 10-Q sample it marks exactly the 82 pages of 268 on which
  ``find_tables()`` finds a multi-row table, none more or less.
- ``text_lines(page)``: pdfium's characters grouped like pdfplumber's ``extract_text_lines``:
  runs of characters in pdfium's order on one baseline (pdfium's generated spaces kept), runs
  whose baselines are within ``LINE_TOLERANCE`` points joined into one line left to right. Each
  line's top/bottom (points from the page top) come from the characters' loose boxes (font
  ascent/descent), as pdfminer's do. ~20x faster than pdfminer's layout.
- ``cover_title(lines)``: the line above "(Exact name of registrant as specified in its
  charter)" on page 1, with the form ("FORM 10-Q") and period ("For the quarterly period ended
  June 25, 2022") when the cover has them: SEC filings, whose first line is "UNITED STATES".
- ``largest_font_line(document)``: page 1's line in the largest font, when that font is clearly
  larger than the page's body text (a title set apart by size).
"""

from __future__ import annotations

import ctypes
import re
import statistics
import threading
from collections.abc import Iterator, Sequence
from typing import Any, cast

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from pdfplumber.table import TableFinder

from ragkeel.ingestion.parsers.base import shorten
from ragkeel.ingestion.parsers.pdf_layout import Line

__all__ = ["PDFIUM_LOCK", "cover_title", "has_ruled_table", "largest_font_line", "text_lines"]

# pdfium (the C library) must not be called from two threads at once (pypdfium2's docs):
# every use holds this lock, in this module's callers (parsers/pdf.py)
PDFIUM_LOCK = threading.RLock()
LINE_TOLERANCE = 3.0  # points between the baselines of one line (pdfplumber's y_tolerance)
MAX_FORM_DEPTH = 15  # form XObjects inside form XObjects (pypdfium2's default)
TITLE_FONT_RATIO = 1.2  # the largest font is a title when >= 1.2x the page's median font size

_NOT_TEXT = frozenset({0, 0xFFFE, 0xFFFF})
_LINE_BREAKS = frozenset({10, 13})
_SOFT_HYPHEN = 2  # pdfium's marker for a hyphen at the end of a line
_REGISTRANT = re.compile(r"\(\s*exact name of (the )?registrant", re.IGNORECASE)
_FORM = re.compile(r"^form\s+(\d{1,2}-[a-z]{1,2}|[a-z]-\d{1,2}|\d{2}-[a-z])(/a)?$", re.IGNORECASE)
_PERIOD = re.compile(
    r"^for the (quarterly period|fiscal year|transition period) ended \S.*$", re.IGNORECASE
)


# -- ruled tables ---------------------------------------------------------------------------


class _EdgesOnly:
    """What ``TableFinder`` reads of a page under the "lines" strategies: edges and bbox."""

    def __init__(self, edges: list[dict[str, Any]], bbox: tuple[float, float, float, float]):
        self.edges = edges
        self.bbox = bbox


def has_ruled_table(page: pdfium.PdfPage) -> bool:
    """Whether pdfplumber's ``find_tables()`` can find a table of two rows or more here."""
    height = float(page.get_height())
    boxes = list(_path_boxes(page, height))
    if len(boxes) < 2:  # one box is one cell: at most a one-row table
        return False
    edges = [edge for box in boxes for edge in _box_edges(box)]
    bbox = (0.0, 0.0, float(page.get_width()), height)
    finder = TableFinder(cast(Any, _EdgesOnly(edges, bbox)), {})  # a duck-typed page
    return any(len(table.rows) > 1 for table in finder.tables)


def _path_boxes(page: pdfium.PdfPage, height: float) -> Iterator[tuple[float, float, float, float]]:
    """(x0, top, x1, bottom) of every path object, top-down page coordinates."""
    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    matrix = pdfium_c.FS_MATRIX()
    # (count, get, parent, transform of the parent's coordinates to the page's, depth)
    identity = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    pending: list[tuple[Any, Any, Any, tuple[float, ...], int]] = [
        (pdfium_c.FPDFPage_CountObjects, pdfium_c.FPDFPage_GetObject, page.raw, identity, 0)
    ]
    while pending:
        count, get, parent, transform, depth = pending.pop()
        for index in range(count(parent)):
            obj = get(parent, index)
            if not obj:
                continue
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            if kind == pdfium_c.FPDF_PAGEOBJ_PATH:
                if pdfium_c.FPDFPageObj_GetBounds(obj, left, bottom, right, top):
                    x0, y0, x1, y1 = _transform_box(
                        transform, left.value, bottom.value, right.value, top.value
                    )
                    yield x0, height - y1, x1, height - y0
            elif (
                kind == pdfium_c.FPDF_PAGEOBJ_FORM
                and depth < MAX_FORM_DEPTH
                and pdfium_c.FPDFPageObj_GetMatrix(obj, matrix)
            ):
                inner = (matrix.a, matrix.b, matrix.c, matrix.d, matrix.e, matrix.f)
                pending.append(
                    (
                        pdfium_c.FPDFFormObj_CountObjects,
                        pdfium_c.FPDFFormObj_GetObject,
                        obj,
                        _compose(inner, transform),
                        depth + 1,
                    )
                )


def _compose(first: tuple[float, ...], then: tuple[float, ...]) -> tuple[float, ...]:
    """The PDF matrix applying ``first`` and then ``then``."""
    a, b, c, d, e, f = first
    a2, b2, c2, d2, e2, f2 = then
    return (
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + e2,
        e * b2 + f * d2 + f2,
    )


def _transform_box(
    m: tuple[float, ...], x0: float, y0: float, x1: float, y1: float
) -> tuple[float, float, float, float]:
    a, b, c, d, e, f = m
    if m == (1.0, 0.0, 0.0, 1.0, 0.0, 0.0):
        return x0, y0, x1, y1
    xs, ys = [], []
    for x, y in ((x0, y0), (x0, y1), (x1, y0), (x1, y1)):
        xs.append(a * x + c * y + e)
        ys.append(b * x + d * y + f)
    return min(xs), min(ys), max(xs), max(ys)


def _box_edges(box: tuple[float, float, float, float]) -> list[dict[str, Any]]:
    """The four sides of a box as pdfplumber edges (``utils.rect_to_edges``)."""
    x0, top, x1, bottom = box
    width, height = x1 - x0, bottom - top
    common = {"x0": x0, "x1": x1, "top": top, "bottom": bottom, "width": width, "height": height}
    return [
        {**common, "bottom": top, "height": 0.0, "doctop": top, "orientation": "h"},
        {**common, "top": bottom, "height": 0.0, "doctop": bottom, "orientation": "h"},
        {**common, "x1": x0, "width": 0.0, "doctop": top, "orientation": "v"},
        {**common, "x0": x1, "width": 0.0, "doctop": top, "orientation": "v"},
    ]


# -- text -----------------------------------------------------------------------------------


class _Run:
    """Characters pdfium emits one after the other on one baseline."""

    __slots__ = ("baseline", "bottom", "chars", "last_left", "size", "top", "x0")

    def __init__(self, baseline: float, x0: float, top: float, bottom: float) -> None:
        self.size = 0.0  # the largest font size among the characters (when asked for)
        self.baseline = baseline
        self.x0 = x0
        self.last_left = x0
        self.top = top
        self.bottom = bottom
        self.chars: list[str] = []


def text_lines(page: pdfium.PdfPage) -> list[Line]:
    """The page's text lines, top to bottom (see the module docstring)."""
    height = float(page.get_height())
    textpage = page.get_textpage()
    try:
        runs = _runs(textpage.raw, height)
    finally:
        textpage.close()
    return [line for group in _by_baseline(runs) if (line := _line(group)) is not None]


def _runs(textpage: Any, height: float, *, sizes: bool = False) -> list[_Run]:
    box = pdfium_c.FS_RECTF()
    x, y = ctypes.c_double(), ctypes.c_double()
    runs: list[_Run] = []
    current: _Run | None = None
    for index in range(pdfium_c.FPDFText_CountChars(textpage)):
        code = pdfium_c.FPDFText_GetUnicode(textpage, index)
        if code in _NOT_TEXT:
            continue
        if code in _LINE_BREAKS:
            current = None
            continue
        char = "-" if code == _SOFT_HYPHEN else chr(code)
        if char.isspace():
            if current is not None:
                current.chars.append(" ")
            continue
        if not pdfium_c.FPDFText_GetCharOrigin(textpage, index, x, y):
            continue
        if not pdfium_c.FPDFText_GetLooseCharBox(textpage, index, box):
            continue
        baseline, top, bottom = height - y.value, height - box.top, height - box.bottom
        if (
            current is None
            or abs(baseline - current.baseline) > LINE_TOLERANCE
            or box.left < current.last_left - 1.0  # went back left: another column or line
        ):
            current = _Run(baseline, box.left, top, bottom)
            runs.append(current)
        current.last_left = box.left
        current.top = min(current.top, top)
        current.bottom = max(current.bottom, bottom)
        current.chars.append(char)
        if sizes:
            current.size = max(current.size, pdfium_c.FPDFText_GetFontSize(textpage, index))
    return runs


def _by_baseline(runs: list[_Run]) -> Iterator[list[_Run]]:
    group: list[_Run] = []
    for run in sorted(runs, key=lambda r: r.baseline):
        if group and run.baseline - group[-1].baseline > LINE_TOLERANCE:
            yield group
            group = []
        group.append(run)
    if group:
        yield group


def _line(group: list[_Run]) -> Line | None:
    parts = [" ".join("".join(run.chars).split()) for run in sorted(group, key=lambda r: r.x0)]
    text = " ".join(part for part in parts if part)
    if not text:
        return None
    return Line(
        text=text, top=min(run.top for run in group), bottom=max(run.bottom for run in group)
    )


# -- titles -----------------------------------------------------------------------------------


def cover_title(lines: Sequence[str]) -> str:
    """An SEC cover page's registrant name (+ form and period), or "" when there is none."""
    texts = [" ".join(line.split()) for line in lines]
    label = next((i for i, text in enumerate(texts) if _REGISTRANT.search(text)), None)
    if label is None:
        return ""
    name = next((t for t in reversed(texts[:label]) if _looks_like_name(t)), "")
    if not name:
        return ""
    form = next((t for t in texts[:label] if _FORM.match(t)), "")
    period = next((t for t in texts[:label] if _PERIOD.match(t)), "")
    title = name
    if form:
        title += " Form " + form.split(None, 1)[1].upper()
        if period:
            head, date = re.split(r"\bended\b", period, maxsplit=1, flags=re.IGNORECASE)
            title += f" {head.strip().lower()} ended {date.strip()}"
    return shorten(title)


def _looks_like_name(text: str) -> bool:
    letters = sum(ch.isalpha() for ch in text)
    lowered = text.lower()
    return (
        letters >= 2
        and not text.startswith("(")
        and "commission file" not in lowered
        and not set(text) <= set("_-–—= ")
    )


def largest_font_line(document: pdfium.PdfDocument) -> str:
    """Page 1's line set in the largest font, when it is >= ``TITLE_FONT_RATIO`` x the median
    character's size and has a few letters; else ""."""
    if len(document) == 0:
        return ""
    page = document[0]
    try:
        textpage = page.get_textpage()
        try:
            sized = _sized_lines(textpage.raw, float(page.get_height()))
        finally:
            textpage.close()
    finally:
        page.close()
    sizes = [size for _, size, count in sized for _ in range(count)]
    if not sizes:
        return ""
    median = statistics.median(sizes)
    text, size, _ = max(sized, key=lambda item: item[1])
    if size < TITLE_FONT_RATIO * median or sum(ch.isalpha() for ch in text) < 3:
        return ""
    return shorten(text)


def _sized_lines(textpage: Any, height: float) -> list[tuple[str, float, int]]:
    """(text, font size, characters) of each line; a line's size is its largest font's."""
    out = []
    for group in _by_baseline(_runs(textpage, height, sizes=True)):
        line = _line(group)
        if line is not None:
            size = max(run.size for run in group)
            out.append((line.text, size, sum(len(run.chars) for run in group)))
    return out

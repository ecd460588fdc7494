"""Pure layout helpers for the PDF parser: table rows, repeated headers/footers, paragraphs.

Kept free of pdfplumber so each rule is unit-testable on plain data.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Line", "PageItem", "group_paragraphs", "remove_repeated_lines", "render_table"]

EDGE_LINES = 3  # a header/footer must be among the first/last 3 text lines of a page
MIN_REPEAT_PAGES = 3
MIN_REPEAT_SHARE = 0.5
PARAGRAPH_GAP = 0.6  # a vertical gap above 0.6 x the line height starts a new paragraph

_LEADING_SYMBOLS = frozenset({"$", "€", "£", "¥", "US$"})
_TRAILING_SYMBOLS = frozenset({"%", ")", ")%", "%)"})
_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Line:
    """One text line of a page, with its vertical extent (PDF points from the page top)."""

    text: str
    top: float
    bottom: float


@dataclass(frozen=True, slots=True)
class PageItem:
    """A paragraph or table found on a page, in reading order."""

    text: str
    kind: str  # "paragraph" or "table"
    top: float


def render_table(rows: Sequence[Sequence[str | None]]) -> str:
    """Rows as ``cell | cell`` lines: lone currency/percent cells merged into their number,
    columns that are empty in every row dropped, spanned (``None``) cells skipped."""
    grid = [[None if c is None else _SPACES.sub(" ", c).strip() for c in row] for row in rows]
    width = max((len(row) for row in grid), default=0)
    grid = [row + [None] * (width - len(row)) for row in grid]
    filled = [sum(1 for row in grid if _is_value(row[j])) for j in range(width)]
    for row in grid:
        _merge_symbols(row, filled)
    keep = [j for j in range(width) if any(row[j] for row in grid)]
    lines = []
    for row in grid:
        cells = [row[j] or "" for j in keep if row[j] is not None]
        while cells and not cells[-1]:
            cells.pop()
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _is_value(cell: str | None) -> bool:
    return bool(cell) and cell not in _LEADING_SYMBOLS and cell not in _TRAILING_SYMBOLS


def _merge_symbols(row: list[str | None], filled: list[int]) -> None:
    """``$`` + ``1,234`` -> ``$1,234`` and ``12.5`` + ``%`` -> ``12.5%``, in place.

    The merged value goes to whichever of the two columns other rows mostly fill, so a table
    whose plain rows span the ``$`` column stays aligned.
    """
    for j, cell in enumerate(row):
        if cell in _LEADING_SYMBOLS:
            k = next((k for k in range(j + 1, len(row)) if row[k]), None)
            if k is not None and _is_value(row[k]):
                target, other = (j, k) if filled[j] >= filled[k] else (k, j)
                row[target], row[other] = f"{cell}{row[k]}", None
        elif cell in _TRAILING_SYMBOLS:
            k = next((k for k in range(j - 1, -1, -1) if row[k]), None)
            if k is not None and _is_value(row[k]):
                row[k], row[j] = f"{row[k]}{cell}", None


def remove_repeated_lines(pages: list[list[Line]]) -> list[list[Line]]:
    """Drop running headers/footers: a line (digits normalised, "Page 3 of 10" ~ "Page # of #")
    among the first or last 3 lines of at least half the pages, and of 3 pages or more."""
    counts: Counter[str] = Counter()
    for lines in pages:
        counts.update({_key(line.text) for line in _edges(lines)})
    needed = max(MIN_REPEAT_PAGES, math.ceil(MIN_REPEAT_SHARE * len(pages)))
    repeated = {key for key, count in counts.items() if count >= needed and key}
    if not repeated:
        return pages
    cleaned = []
    for lines in pages:
        edge_ids = {id(line) for line in _edges(lines)}
        cleaned.append(
            [ln for ln in lines if not (id(ln) in edge_ids and _key(ln.text) in repeated)]
        )
    return cleaned


def _edges(lines: list[Line]) -> list[Line]:
    if len(lines) <= 2 * EDGE_LINES:
        return lines
    return lines[:EDGE_LINES] + lines[-EDGE_LINES:]


def _key(text: str) -> str:
    return _SPACES.sub(" ", _DIGITS.sub("#", text.lower())).strip()


def group_paragraphs(lines: list[Line]) -> list[PageItem]:
    """Consecutive lines form a paragraph until a vertical gap larger than ~a blank line."""
    if not lines:
        return []
    height = statistics.median(max(line.bottom - line.top, 1.0) for line in lines)
    items: list[PageItem] = []
    current: list[Line] = []
    for line in lines:
        if current and line.top - current[-1].bottom > PARAGRAPH_GAP * height:
            items.append(_paragraph(current))
            current = []
        current.append(line)
    items.append(_paragraph(current))
    return items


def _paragraph(lines: list[Line]) -> PageItem:
    return PageItem(text="\n".join(line.text for line in lines), kind="paragraph", top=lines[0].top)

"""Word documents (.docx) with python-docx, paragraphs and tables in body order.

"Title" and "Heading N" styles become headings (with ``heading_path``); list styles and numbered
paragraphs are grouped into one ``list`` block per run of items; tables become ``table`` blocks
with ``cell | cell`` rows (a horizontally merged cell is written once). Content inside content
controls, text boxes, headers and footers is not read. Title: the core "title" property, else
the first Title/Heading 1 paragraph, else the file stem. Legacy ``.doc`` files are not supported.

Before python-docx reads any part, ``archive.checked_zip`` checks the ZIP container against the
``ParseLimits`` (member count, declared inflated size, compression ratio, sizes that lie) and
python-docx reads its verified copy: a decompression bomb is ``TOO_LARGE`` in milliseconds,
with memory bounded by the file's size.
The parse deadline is checked between body items.
"""

from __future__ import annotations

import io
import re
from typing import Any

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from ragkeel.errors import ParseError
from ragkeel.ingestion.parsers.archive import checked_zip
from ragkeel.ingestion.parsers.base import (
    HeadingTrail,
    ParseOutcome,
    Source,
    build_document,
    shorten,
)
from ragkeel.types import Block, BlockKind

__all__ = ["parse"]

_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_KIND = "Word .docx"
_HINT = "open and re-save it in Word/LibreOffice as .docx (legacy .doc is not supported)"


def parse(source: Source) -> ParseOutcome:
    package = checked_zip(source.read_bytes(), source, kind=_KIND, hint=_HINT)
    try:
        document = docx.Document(io.BytesIO(package))
    except Exception as exc:
        raise ParseError(
            f"{source.name}: not a valid {_KIND} file ({type(exc).__name__}: {exc})", hint=_HINT
        ) from exc
    reader = _BodyReader()
    for number, item in enumerate(document.iter_inner_content(), start=1):
        source.check_time(f"body item {number}")
        if isinstance(item, Table):
            reader.table(item)
        else:
            reader.paragraph(item)
    reader.flush_list()
    core_title = str(document.core_properties.title or "").strip()
    title = core_title or reader.first_heading or source.path.stem
    return ParseOutcome([build_document(source.name, shorten(title), reader.blocks)])


class _BodyReader:
    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.trail = HeadingTrail()
        self.list_items: list[str] = []
        self.first_heading = ""

    def paragraph(self, paragraph: Paragraph) -> None:
        text = paragraph.text.strip()
        style = _style_name(paragraph)
        level = _heading_level(style)
        list_level = _list_level(paragraph, style)
        if list_level is not None:
            if text:
                self.list_items.append(f"{'  ' * list_level}- {text}")
            return
        self.flush_list()
        if not text:
            return
        if level:
            self.trail.enter(level, text)
            self.first_heading = self.first_heading or (text if level == 1 else "")
            self._emit(text, "heading", level)
        else:
            self._emit(text, "paragraph")

    def table(self, table: Table) -> None:
        self.flush_list()
        lines = []
        for row in table.rows:
            cells: list[str] = []
            previous: Any = None
            for cell in row.cells:
                if cell._tc is previous:  # a horizontally merged cell repeats per grid column
                    continue
                previous = cell._tc
                cells.append(_SPACES.sub(" ", cell.text).strip())
            if any(cells):
                lines.append(" | ".join(cells))
        self._emit("\n".join(lines), "table")

    def flush_list(self) -> None:
        if self.list_items:
            self._emit("\n".join(self.list_items), "list")
            self.list_items = []

    def _emit(self, text: str, kind: BlockKind, level: int = 0) -> None:
        self.blocks.append(Block(text=text, kind=kind, heading_path=self.trail.path, level=level))


def _style_name(paragraph: Paragraph) -> str:
    try:
        style = paragraph.style
    except (KeyError, ValueError):  # a style id that the styles part does not define
        return ""
    return str(style.name or "") if style is not None else ""


def _heading_level(style: str) -> int:
    if style.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(style)
    return int(match.group(1)) if match else 0


def _list_level(paragraph: Paragraph, style: str) -> int | None:
    """The nesting level of a list item (0 = top), or ``None`` for a normal paragraph."""
    ppr = paragraph._p.pPr
    numbering: Any = ppr.numPr if ppr is not None else None  # python-docx types it loosely
    if numbering is not None and numbering.ilvl is not None and numbering.ilvl.val is not None:
        return int(numbering.ilvl.val)
    if numbering is not None or style.lower().startswith("list"):
        return 0
    return None

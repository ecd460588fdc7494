"""CSV (.csv): one ``table`` block per ~20 rows, each row a self-describing line.

The dialect comes from ``csv.Sniffer`` (comma when it cannot tell), the encoding is detected as
for .txt, and the first row is the header. A row renders as ``col1: v1 | col2: v2`` (empty values
left out) and every block starts with the header names so each chunk stands on its own.
Title: the file stem. Metadata: ``rows`` (data rows) and ``columns`` (comma-joined names).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

from ragkeel.errors import EmptyDocumentError, ParseError
from ragkeel.ingestion.parsers.base import ParseOutcome, Source, build_document
from ragkeel.ingestion.parsers.encoding import decode_bytes
from ragkeel.types import Block, MetaValue

__all__ = ["ROWS_PER_BLOCK", "parse"]

ROWS_PER_BLOCK = 20
_SNIFF_CHARS = 64 * 1024
_DELIMITERS = ",;\t|"
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def parse(source: Source) -> ParseOutcome:
    text = decode_bytes(source.read_bytes(), source.name)
    reader = csv.reader(_lines(text), dialect=_sniff(text))
    try:
        header = _header(next(reader, []))
        rows = []
        for row in reader:
            source.check_time(f"line {reader.line_num}")
            if any(cell.strip() for cell in row):
                rows.append(row)
    except csv.Error as exc:
        raise ParseError(
            f"{source.name}: malformed CSV near line {reader.line_num}: {exc}",
            hint="fix the quoting on that line, or export the sheet again as CSV",
        ) from exc
    if not rows:
        raise EmptyDocumentError(
            f"{source.name}: the CSV has no data rows (only a header or nothing)",
            hint="add rows or remove the file",
        )
    blocks = [
        Block(text=_block_text(header, rows[start : start + ROWS_PER_BLOCK]), kind="table")
        for start in range(0, len(rows), ROWS_PER_BLOCK)
    ]
    metadata: dict[str, MetaValue] = {"rows": len(rows), "columns": ",".join(header)}
    return ParseOutcome([build_document(source.name, source.path.stem, blocks, metadata=metadata)])


def _lines(text: str) -> Iterator[str]:
    """``text``'s lines with their endings (``\\r\\n``, ``\\r`` or ``\\n``: what
    ``StringIO(newline="")`` yields), one at a time: a ``StringIO`` would hold the whole text
    again as 4 bytes a character (a 50 MB line peaked at 386 MiB, issue 11)."""
    for match in _LINE.finditer(text):
        yield match.group()


def _sniff(text: str) -> type[csv.Dialect] | str:
    try:
        return csv.Sniffer().sniff(text[:_SNIFF_CHARS], delimiters=_DELIMITERS)
    except csv.Error:
        return "excel"


def _header(row: list[str]) -> list[str]:
    return [cell.strip() or f"column_{n}" for n, cell in enumerate(row, start=1)]


def _block_text(header: list[str], rows: list[list[str]]) -> str:
    lines = [" | ".join(header)]
    for row in rows:
        names = header + [f"column_{n}" for n in range(len(header) + 1, len(row) + 1)]
        cells = [
            f"{name}: {value.strip()}"
            for name, value in zip(names, row, strict=False)
            if value.strip()
        ]
        lines.append(" | ".join(cells))
    return "\n".join(lines)

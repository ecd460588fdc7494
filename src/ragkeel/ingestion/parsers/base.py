"""What every format parser shares: the input (``Source``, with its ``ParseLimits`` and parse
deadline), the output (``ParseOutcome``), the heading trail, and ``build_document`` (cleans every
block and rejects empty documents).

``ParseLimits`` bounds the work one file may cause beyond its size on disk: inflated bytes,
compression ratio and member count of a ZIP-based file (``archive.py``), pages of a PDF, and
parse time. Parsers call ``Source.check_time`` between units of work (pages, body items, rows,
records); a single library call (one PDF page's layout, one HTML parse) cannot be interrupted
and may overrun the deadline by its own duration.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ragkeel.errors import (
    EmptyDocumentError,
    IngestError,
    ParseError,
    ParseTimeoutError,
    TooLargeError,
)
from ragkeel.ingestion.cleaning import clean_text, storable
from ragkeel.settings import IngestionSettings
from ragkeel.types import Block, Metadata, MetaValue, ParsedDocument

__all__ = [
    "HeadingTrail",
    "ParseLimits",
    "ParseOutcome",
    "Parser",
    "Source",
    "build_document",
    "first_line_title",
    "human_size",
    "split_paragraphs",
    "too_large",
]

TITLE_MAX_CHARS = 120
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_DEFAULTS = IngestionSettings()


@dataclass(frozen=True, slots=True)
class ParseOutcome:
    """Documents parsed from one source plus the records that failed (JSONL: one per bad line)."""

    documents: list[ParsedDocument]
    record_errors: list[tuple[str, IngestError]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds on the work one file may cause (the ``ingestion.*`` settings of the same names,
    whose defaults these are)."""

    max_inflated_bytes: int = _DEFAULTS.max_inflated_bytes
    max_compression_ratio: float = _DEFAULTS.max_compression_ratio
    max_archive_members: int = _DEFAULTS.max_archive_members
    max_pdf_pages: int = _DEFAULTS.max_pdf_pages
    max_parse_seconds: float = _DEFAULTS.max_parse_seconds

    @classmethod
    def from_settings(cls, ingestion: IngestionSettings) -> ParseLimits:
        return cls(
            max_inflated_bytes=ingestion.max_inflated_bytes,
            max_compression_ratio=ingestion.max_compression_ratio,
            max_archive_members=ingestion.max_archive_members,
            max_pdf_pages=ingestion.max_pdf_pages,
            max_parse_seconds=ingestion.max_parse_seconds,
        )


@dataclass(frozen=True, slots=True)
class Source:
    """A regular file already checked against ``max_bytes`` by ``stat()``; reads stay bounded.
    ``deadline`` is a ``time.monotonic()`` value after which ``check_time`` refuses the file."""

    path: Path
    max_bytes: int
    limits: ParseLimits = ParseLimits()
    deadline: float = math.inf

    @property
    def name(self) -> str:
        return self.path.name

    def read_bytes(self) -> bytes:
        """Read at most ``max_bytes`` (the file may have grown since it was checked). The first
        read asks for the size ``fstat`` reports (``read(n)`` allocates ``n`` bytes up front)."""
        with self.path.open("rb") as handle:
            expected = min(os.fstat(handle.fileno()).st_size, self.max_bytes)
            data = handle.read(expected + 1)
            if len(data) > expected:  # it grew meanwhile: read on, up to the bound
                data += handle.read(self.max_bytes + 1 - len(data))
        if len(data) > self.max_bytes:
            raise too_large(self.name, len(data), self.max_bytes)
        return data

    def check_time(self, where: str) -> None:
        """Refuse the file (``ParseTimeoutError``) once its parse deadline has passed; ``where``
        says how far parsing got (e.g. "page 812 of 1500")."""
        if time.monotonic() > self.deadline:
            seconds = self.limits.max_parse_seconds
            raise ParseTimeoutError(
                f"{self.name}: parsing took longer than {seconds:g} s (stopped at {where})",
                hint="split the file, or raise ingestion.max_parse_seconds "
                "(RAGKEEL_INGESTION__MAX_PARSE_SECONDS)",
            )


Parser = Callable[[Source], ParseOutcome]


def too_large(name: str, size: int, limit: int) -> TooLargeError:
    return TooLargeError(
        f"{name} is {human_size(size)}, above the {human_size(limit)} limit for one file",
        hint="split the file, or raise ingestion.max_file_bytes (RAGKEEL_INGESTION__MAX_FILE_BYTES)",
    )


class HeadingTrail:
    """The stack of open headings; ``enter`` a heading and read the ``path`` for later blocks.

    A heading block's own ``heading_path`` includes itself (it opens that section).
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def enter(self, level: int, text: str) -> tuple[str, ...]:
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, " ".join(text.split())))
        return self.path

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self._stack)


def build_document(
    name: str,
    title: str,
    blocks: Iterable[Block],
    *,
    metadata: Metadata | None = None,
    external_id: str | None = None,
) -> ParsedDocument:
    """Clean every block, drop blank ones, and raise ``EmptyDocumentError`` if none is left;
    make the metadata storable (``_storable_value``); an ``external_id`` that cannot be stored
    as it is (control characters, lone surrogates) is a ``ParseError``."""
    cleaned: list[Block] = []
    for block in blocks:
        text = clean_text(block.text)
        if text:
            path = tuple(clean_text(part) for part in block.heading_path)
            cleaned.append(replace(block, text=text, heading_path=path))
    if not cleaned:
        raise EmptyDocumentError(
            f"{name}: no text found", hint="the file has no readable content; remove it or fix it"
        )
    if external_id is not None and storable(external_id) != external_id:
        raise ParseError(
            f"{name}: the id {external_id!r} holds characters that cannot be stored "
            "(control characters or lone surrogates)",
            hint="use ids of printable characters",
        )
    return ParsedDocument(
        title=clean_text(title),
        blocks=tuple(cleaned),
        metadata={storable(k): _storable_value(v) for k, v in (metadata or {}).items()},
        external_id=external_id,
    )


def _storable_value(value: MetaValue) -> MetaValue:
    """A metadata value that can be stored and sent as JSON: strings without control characters
    or lone surrogates, non-finite floats (a JSON file's ``NaN``, ``1e999``) as text."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def split_paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, stripped, without empty ones."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return [part.strip() for part in _BLANK_LINE.split(text) if part.strip()]


def first_line_title(text: str, fallback: str) -> str:
    """The first non-empty line, trimmed to ~120 characters at a word boundary, else ``fallback``."""
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return shorten(line)
    return fallback


def shorten(text: str, limit: int = TITLE_MAX_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return (cut if len(cut) >= limit // 2 else text[:limit]).rstrip() + "…"


def human_size(size: int) -> str:
    """``1.5 MB``-style sizes (binary units) for messages."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"

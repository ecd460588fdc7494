"""What every format parser shares: the input (``Source``), the output (``ParseOutcome``),
the heading trail, and ``build_document`` (cleans every block and rejects empty documents)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ragkeel.errors import EmptyDocumentError, IngestError, TooLargeError
from ragkeel.ingestion.cleaning import clean_text
from ragkeel.types import Block, Metadata, ParsedDocument

__all__ = [
    "HeadingTrail",
    "ParseOutcome",
    "Parser",
    "Source",
    "build_document",
    "first_line_title",
    "split_paragraphs",
    "too_large",
]

TITLE_MAX_CHARS = 120
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True, slots=True)
class ParseOutcome:
    """Documents parsed from one source plus the records that failed (JSONL: one per bad line)."""

    documents: list[ParsedDocument]
    record_errors: list[tuple[str, IngestError]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Source:
    """A regular file already checked against ``max_bytes`` by ``stat()``; reads stay bounded."""

    path: Path
    max_bytes: int

    @property
    def name(self) -> str:
        return self.path.name

    def read_bytes(self) -> bytes:
        """Read at most ``max_bytes`` (the file may have grown since it was checked)."""
        with self.path.open("rb") as handle:
            data = handle.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            raise too_large(self.name, len(data), self.max_bytes)
        return data


Parser = Callable[[Source], ParseOutcome]


def too_large(name: str, size: int, limit: int) -> TooLargeError:
    return TooLargeError(
        f"{name} is {_human(size)}, above the {_human(limit)} limit for one file",
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
    """Clean every block, drop blank ones, and raise ``EmptyDocumentError`` if none is left."""
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
    return ParsedDocument(
        title=clean_text(title),
        blocks=tuple(cleaned),
        metadata=dict(metadata or {}),
        external_id=external_id,
    )


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


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"

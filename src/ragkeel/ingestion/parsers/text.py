"""Plain text (.txt): encoding detection, blank-line paragraphs, first line as the title."""

from __future__ import annotations

from ragkeel.ingestion.parsers.base import (
    ParseOutcome,
    Source,
    build_document,
    first_line_title,
    split_paragraphs,
)
from ragkeel.ingestion.parsers.encoding import decode_bytes
from ragkeel.types import Block

__all__ = ["parse"]


def parse(source: Source) -> ParseOutcome:
    text = decode_bytes(source.read_bytes(), source.name)
    blocks = [Block(text=paragraph) for paragraph in split_paragraphs(text)]
    title = first_line_title(text, fallback=source.path.stem)
    return ParseOutcome([build_document(source.name, title, blocks)])

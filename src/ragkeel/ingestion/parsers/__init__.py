"""File -> ``ParsedDocument``s: one parser module per format, chosen by suffix.

Entry points::

    parse_source(path, *, max_bytes, limits=ParseLimits()) -> ParseOutcome  # documents +
                                                        # per-record errors (JSONL)
    parse_file(path, *, max_bytes) -> list[ParsedDocument]  # the same, record errors ignored

Checks, in order: the suffix is supported (``UnsupportedTypeError``); ``stat()`` succeeds and the
path is a regular file (``ReadError``); the size is at most ``max_bytes`` (``TooLargeError``,
decided before a single byte is read); the file is not empty (``EmptyDocumentError``). Then
the format parser runs, within ``limits`` (``base.ParseLimits``: inflated size and ratio of
ZIP-based formats, PDF pages, and a parse deadline of ``max_parse_seconds`` from here).
Every failure is an ``IngestError`` with a stable ``code``::

    UNSUPPORTED_TYPE  unknown suffix                 TOO_LARGE   over max_bytes or a ParseLimits
    READ_ERROR        missing, unreadable, not a file ENCRYPTED  password-protected PDF
    DECODE_ERROR      binary or undecodable text     EMPTY       no text at all (or a scanned PDF)
    PARSE_ERROR       malformed content; any unexpected library error is mapped here (``from exc``)
    PARSE_TIMEOUT     parsing ran past max_parse_seconds (checked between pages/blocks/records)

Every block's text has been through ``cleaning.clean_text``. ``Block.heading_path`` of a heading
block includes that heading. Parsers are imported on first use, so importing this package is cheap.
"""

from __future__ import annotations

import importlib
import stat
import time
from pathlib import Path

from ragkeel.errors import (
    EmptyDocumentError,
    IngestError,
    ParseError,
    ReadError,
    UnsupportedTypeError,
)
from ragkeel.ingestion.parsers.base import ParseLimits, ParseOutcome, Parser, Source, too_large
from ragkeel.types import ParsedDocument

__all__ = ["SUPPORTED_SUFFIXES", "ParseLimits", "ParseOutcome", "parse_file", "parse_source"]

# suffix -> (module in this package, function); imported lazily (pdfplumber is slow to import)
_REGISTRY: dict[str, tuple[str, str]] = {
    ".txt": ("text", "parse"),
    ".md": ("markdown", "parse"),
    ".markdown": ("markdown", "parse"),
    ".html": ("html", "parse"),
    ".htm": ("html", "parse"),
    ".pdf": ("pdf", "parse"),
    ".docx": ("docx", "parse"),
    ".csv": ("tabular", "parse"),
    ".json": ("jsonfmt", "parse_json"),
    ".jsonl": ("jsonfmt", "parse_jsonl"),
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset(_REGISTRY)


def parse_source(
    path: Path | str, *, max_bytes: int, limits: ParseLimits | None = None
) -> ParseOutcome:
    """Parse one file into documents; a whole-file failure raises an ``IngestError``."""
    path = Path(path)
    limits = limits or ParseLimits()
    parser = _parser_for(path)
    size = _checked_size(path)
    if size > max_bytes:
        raise too_large(path.name, size, max_bytes)
    if size == 0:
        raise EmptyDocumentError(f"{path.name}: the file is empty", hint="remove it or add content")
    try:
        deadline = time.monotonic() + limits.max_parse_seconds
        return parser(Source(path=path, max_bytes=max_bytes, limits=limits, deadline=deadline))
    except (IngestError, MemoryError):
        raise
    except OSError as exc:
        raise _read_error(path, exc) from exc
    except Exception as exc:  # a library failed in a way we did not foresee: still a clean error
        raise ParseError(
            f"{path.name}: could not be parsed ({type(exc).__name__}: {exc})",
            hint=f"check that it is a valid {path.suffix.lower()} file; re-export it and retry",
        ) from exc


def parse_file(path: Path | str, *, max_bytes: int) -> list[ParsedDocument]:
    """The documents of one file (per-record errors of a JSONL file are dropped; see
    ``parse_source`` to report them)."""
    return parse_source(path, max_bytes=max_bytes).documents


def _parser_for(path: Path) -> Parser:
    suffix = path.suffix.lower()
    entry = _REGISTRY.get(suffix)
    if entry is None:
        kind = f"'{suffix}'" if suffix else "without a suffix"
        raise UnsupportedTypeError(
            f"{path.name}: unsupported file type {kind}",
            hint="supported: " + ", ".join(sorted(SUPPORTED_SUFFIXES)) + "; convert or skip it",
        )
    module = importlib.import_module(f"{__name__}.{entry[0]}")
    parser: Parser = getattr(module, entry[1])
    return parser


def _checked_size(path: Path) -> int:
    try:
        info = path.stat()
    except OSError as exc:
        raise _read_error(path, exc) from exc
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise ReadError(
            f"{path.name}: is {kind}, so it cannot be read as a document",
            hint="point ingestion at regular files (FIFOs, devices and sockets are skipped)",
        )
    return info.st_size


def _read_error(path: Path, exc: OSError) -> ReadError:
    if isinstance(exc, FileNotFoundError):
        what, hint = "does not exist (or is a broken symlink)", "check the path"
    elif isinstance(exc, PermissionError):
        what, hint = "permission denied", "give the ingesting user read access to the file"
    else:
        what, hint = f"could not be read ({exc.strerror or exc})", "check the disk/filesystem"
    return ReadError(f"{path.name}: {what}", hint=hint)

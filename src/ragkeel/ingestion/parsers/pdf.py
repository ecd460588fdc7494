"""PDF (.pdf): text per page with pypdfium2, tables with pdfplumber on the pages that have
them, running headers/footers removed.

Per page (issue 14): pdfium's path objects say whether the page holds a ruled table of two rows
or more (``pdf_fast.has_ruled_table``: pdfplumber's table finder on those boxes alone, no text
layout). Such a page goes through pdfplumber as before: ``find_tables()`` gives ``table`` blocks
(``cell | cell`` rows); the text outside the table boxes is split into lines; a one-row "table"
(a ruled total line, a boxed paragraph) joins the text flow. Every other page's lines come from
pdfium's text (``pdf_fast.text_lines``, ~20x faster than pdfminer's layout; spacing may differ
from pdfplumber's, and a one-row "table" there is plain text without ``|``). Then lines become
paragraphs, and tables and paragraphs are ordered by their top coordinate. ``Block.page`` is
1-based. Lines repeated at the top/bottom of most pages are dropped (see
``pdf_layout.remove_repeated_lines``). pdfplumber reads every page when pdfium cannot open the
file or counts other pages than its page tree declares, and a page pdfium fails on. pdfium is
not thread-safe: its calls hold ``pdf_fast.PDFIUM_LOCK`` (ingestion job workers run jobs in
threads).

Bounds (``ParseLimits``): the page count the page tree declares is checked against
``max_pdf_pages`` before any page is read, and pages are then read one at a time, stopping at
``max_pdf_pages`` + 1 in case the declared count lies (``TooLargeError``, "10000 pages, above the
2000-page limit"); the parse deadline is checked before each page (``ParseTimeoutError``, with
the page reached).

Errors: a PDF that needs a password is ``EncryptedError``. An encrypted PDF whose user password
is empty (owner-password / permissions only) opens in every viewer without a prompt, so it is
ingested like any other PDF. Truncated or malformed files are ``ParseError``; a PDF without any
extractable text (a scan) is ``EmptyDocumentError`` (OCR is not supported).
Title: the metadata Title when it looks like a real title (not "Microsoft Word - x.docx", not an
EDGAR accession number), else the cover page's registrant name with form and period (SEC
filings: "Apple Inc. Form 10-Q for the quarterly period ended June 25, 2022", ``pdf_fast``),
else page 1's line in a clearly larger font, else the first line, else the file's stem.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pdfplumber
import pypdfium2 as pdfium
from pdfminer.pdfdocument import PDFEncryptionError
from pdfminer.pdfpage import PDFPage
from pdfminer.pdftypes import resolve1
from pdfplumber.page import Page

from ragkeel.errors import (
    EmptyDocumentError,
    EncryptedError,
    IngestError,
    ParseError,
    TooLargeError,
)
from ragkeel.ingestion.parsers.base import ParseOutcome, Source, build_document, shorten
from ragkeel.ingestion.parsers.pdf_fast import (
    PDFIUM_LOCK,
    cover_title,
    has_ruled_table,
    largest_font_line,
    text_lines,
)
from ragkeel.ingestion.parsers.pdf_layout import (
    Line,
    PageItem,
    group_paragraphs,
    remove_repeated_lines,
    render_table,
)
from ragkeel.types import Block, BlockKind

__all__ = ["parse"]

_PDFMINER_LOGGER = logging.getLogger("pdfminer")
if _PDFMINER_LOGGER.level == logging.NOTSET:
    # pdfminer logs a WARNING for every harmless oddity (missing CropBox, bad font widths...).
    # Quiet it unless the application configured this logger itself.
    _PDFMINER_LOGGER.setLevel(logging.ERROR)

_LIBRARY_WARNINGS = r"(pdfminer|pdfplumber)(\..*)?$"
_BAD_TITLES = frozenset({"untitled", "untitled document", "document", "title", "none", "unknown"})
_FILE_SUFFIXES = (".doc", ".docx", ".pdf", ".rtf", ".indd", ".tmp", ".txt", ".xls", ".xlsx", ".ppt")


def parse(source: Source) -> ParseOutcome:
    data = source.read_bytes()
    with _quiet_library_warnings():
        try:
            pdf = pdfplumber.open(io.BytesIO(data))
        except Exception as exc:
            raise _open_error(exc, data, source.name) from exc
        # Not ``with pdf``: PDF.close() builds every page object (pdfplumber 0.11) just to
        # close it, which is the cost the page bound avoids; each page is closed after use and
        # the stream is a BytesIO of ours.
        declared = _declared_page_count(pdf)
        if declared is not None and declared > source.limits.max_pdf_pages:
            raise _too_many_pages(source, declared)
        title_hint = _metadata_title(pdf.metadata)
        fast = _open_pdfium(data, declared)
        try:
            pages = [
                _read(fast, page, number, source.name)
                for number, page in _pages(pdf, source, declared)
            ]
            largest = ""
            if fast is not None and not title_hint:
                with PDFIUM_LOCK:
                    largest = largest_font_line(fast)
        finally:
            if fast is not None:
                with PDFIUM_LOCK:
                    fast.close()
    page_count = len(pages)
    blocks = _blocks(pages)
    if not blocks:
        raise EmptyDocumentError(
            f"{source.name}: the PDF has no extractable text on any of its {page_count} pages "
            "(probably a scanned image)",
            hint="OCR is not supported; run the file through an OCR tool first",
        )
    first_text = next((b.text for b in blocks if b.kind == "paragraph"), "")
    title = (
        title_hint
        or cover_title([line.text for line in pages[0].lines] if pages else [])
        or largest
        or shorten(" ".join(first_text.split("\n", 1)[0].split()))
        or source.path.stem
    )
    return ParseOutcome(
        [build_document(source.name, title, blocks, metadata={"pages": page_count})]
    )


def _open_pdfium(data: bytes, declared: int | None) -> pdfium.PdfDocument | None:
    """The same bytes opened by pdfium for the fast text path, or None (every page then goes
    through pdfplumber): when pdfium cannot open them, or counts other pages than the page tree
    declares (pages are matched by number)."""
    with PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(data)
        except Exception:  # pdfplumber opened it: read it the slow way rather than refuse it
            return None
        if declared is None or len(document) != declared:
            document.close()
            return None
        return document


def _read(fast: pdfium.PdfDocument | None, page: Any, number: int, name: str) -> _PageContent:
    """One page: pdfium's text when the page has no ruled table, else pdfplumber's tables and
    text as before (also when pdfium fails on the page)."""
    if fast is not None:
        with PDFIUM_LOCK:
            lines = _fast_lines(fast, number)
        if lines is not None:
            return _PageContent(number, lines, [])
    return _read_page(page, number, name)


def _fast_lines(fast: pdfium.PdfDocument, number: int) -> list[Line] | None:
    """Page ``number``'s lines from pdfium, or None when it needs pdfplumber (a ruled table,
    or pdfium failed on it: pdfplumber then decides, ``ParseError`` if it is damaged)."""
    try:
        fast_page = fast[number - 1]
    except Exception:
        return None
    try:
        return None if has_ruled_table(fast_page) else text_lines(fast_page)
    except Exception:
        return None
    finally:
        fast_page.close()


@contextmanager
def _quiet_library_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=_LIBRARY_WARNINGS)
        yield


def _declared_page_count(pdf: Any) -> int | None:
    """The /Count of the root page tree (no page is parsed), or None when it is unusable."""
    try:
        count = resolve1(resolve1(pdf.doc.catalog.get("Pages")).get("Count"))
    except Exception:  # a damaged catalog: the page walk below still bounds the count
        return None
    return count if isinstance(count, int) and count >= 0 else None


def _pages(pdf: Any, source: Source, declared: int | None) -> Iterator[tuple[int, Any]]:
    """The pages one at a time (``pdf.pages`` would build every page object first), at most
    ``max_pdf_pages``, with the parse deadline checked before each."""
    limit = source.limits.max_pdf_pages
    of = f" of {declared}" if declared else ""
    doctop = 0.0
    for number, page_obj in enumerate(PDFPage.create_pages(pdf.doc), start=1):
        if number > limit:
            raise _too_many_pages(source, None)
        source.check_time(f"page {number}{of}")
        page = Page(pdf, page_obj, page_number=number, initial_doctop=doctop)
        doctop += float(page.height)
        try:
            yield number, page
        finally:
            page.close()  # free the page's cached layout objects as we go


def _too_many_pages(source: Source, declared: int | None) -> TooLargeError:
    limit = source.limits.max_pdf_pages
    count = f"{declared} pages" if declared is not None else f"more than {limit} pages"
    return TooLargeError(
        f"{source.name}: the PDF has {count}, above the {limit}-page limit for one file",
        hint="split the PDF, or raise ingestion.max_pdf_pages (RAGKEEL_INGESTION__MAX_PDF_PAGES)",
    )


class _PageContent:
    __slots__ = ("lines", "number", "tables")

    def __init__(self, number: int, lines: list[Line], tables: list[PageItem]) -> None:
        self.number = number
        self.lines = lines
        self.tables = tables


def _read_page(page: Any, number: int, name: str) -> _PageContent:
    try:
        found = page.find_tables()
        rendered = [(render_table(table.extract()), table.bbox) for table in found]
        boxes = [tuple(table.bbox) for table in found]
        body = page.filter(lambda obj: not _inside_any(obj, boxes)) if boxes else page
        raw_lines = body.extract_text_lines(return_chars=False)
    except Exception as exc:
        raise ParseError(
            f"{name}: page {number} could not be read ({type(exc).__name__}: {exc})",
            hint="the PDF is damaged; re-export or repair it (e.g. print to PDF) and retry",
        ) from exc
    lines = [
        Line(text=str(line["text"]), top=float(line["top"]), bottom=float(line["bottom"]))
        for line in raw_lines
        if str(line["text"]).strip()
    ]
    tables: list[PageItem] = []
    for text, (_, top, _, bottom) in rendered:
        if "\n" in text:
            tables.append(PageItem(text=text, kind="table", top=float(top)))
        elif text.strip():  # a ruled single row or boxed paragraph: part of the text flow
            lines.append(Line(text=text, top=float(top), bottom=float(bottom)))
    lines.sort(key=lambda line: line.top)
    return _PageContent(number, lines, tables)


def _inside_any(obj: dict[str, Any], boxes: list[tuple[float, ...]]) -> bool:
    if "x0" not in obj or "top" not in obj:
        return False
    x = (float(obj["x0"]) + float(obj["x1"])) / 2
    y = (float(obj["top"]) + float(obj["bottom"])) / 2
    return any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)


def _blocks(pages: list[_PageContent]) -> list[Block]:
    kept_lines = remove_repeated_lines([page.lines for page in pages])
    blocks: list[Block] = []
    for page, lines in zip(pages, kept_lines, strict=True):
        items = sorted([*group_paragraphs(lines), *page.tables], key=lambda item: item.top)
        for item in items:
            kind: BlockKind = "table" if item.kind == "table" else "paragraph"
            blocks.append(Block(text=item.text, kind=kind, page=page.number))
    return blocks


def _open_error(exc: Exception, data: bytes, name: str) -> IngestError:
    if any(isinstance(e, PDFEncryptionError) for e in _causes(exc)) or b"/Encrypt" in data:
        return EncryptedError(
            f"{name}: the PDF is encrypted and needs a password to open",
            hint="remove the password (e.g. print to PDF or `qpdf --decrypt`) and ingest again",
        )
    return ParseError(
        f"{name}: not a readable PDF ({_describe(exc)}); it may be truncated or damaged",
        hint="re-download or re-export the file and ingest again",
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (pdfplumber puts pdfminer's error in ``args[0]``), its causes."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(a for a in current.args if isinstance(a, BaseException))
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _describe(exc: BaseException) -> str:
    inner = next((e for e in _causes(exc) if e is not exc), exc)
    return f"{type(inner).__name__}: {inner}" if str(inner) else type(inner).__name__


def _metadata_title(metadata: Any) -> str:
    value = metadata.get("Title") if isinstance(metadata, dict) else None
    if not isinstance(value, str):
        return ""
    title = " ".join(value.replace("\x00", "").split())
    lowered = title.lower()
    if not 3 <= len(title) <= 200 or lowered in _BAD_TITLES or lowered.endswith(_FILE_SUFFIXES):
        return ""
    if lowered.startswith("microsoft ") or not any(ch.isalpha() for ch in title):
        return ""
    return title

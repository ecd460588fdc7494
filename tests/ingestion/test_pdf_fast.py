"""The PDF parser's pypdfium2 path (issue 14): which pages need pdfplumber, the text lines, and
titles, on PDFs drawn with reportlab."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from ragkeel.ingestion.parsers import parse_source
from ragkeel.ingestion.parsers.pdf_fast import (
    cover_title,
    has_ruled_table,
    largest_font_line,
    text_lines,
)

BuildPdf = Callable[..., Path]


def test_only_pages_with_a_ruled_table_of_two_rows_need_pdfplumber(
    build_pdf: BuildPdf, tmp_path: Path
) -> None:
    with_table = pdfium.PdfDocument(build_pdf("t.pdf", pages=1))
    without = pdfium.PdfDocument(build_pdf("n.pdf", pages=1, table=False))
    path = tmp_path / "ruled.pdf"
    canvas = Canvas(str(path), pagesize=A4)
    canvas.drawString(72, 700, "A boxed paragraph and a rule are not tables.")
    canvas.rect(70, 690, 300, 20)  # one box: one cell, one row
    canvas.line(70, 600, 400, 600)
    canvas.showPage()
    canvas.save()
    ruled = pdfium.PdfDocument(path)
    try:
        assert has_ruled_table(with_table[0]) is True
        assert has_ruled_table(without[0]) is False
        assert has_ruled_table(ruled[0]) is False
    finally:
        for document in (with_table, without, ruled):
            document.close()


def test_text_lines_top_to_bottom_with_their_words(build_pdf: BuildPdf) -> None:
    document = pdfium.PdfDocument(build_pdf("n.pdf", pages=1, table=False))
    try:
        lines = text_lines(document[0])
    finally:
        document.close()
    assert [line.text for line in lines] == [
        "Acme Cloud Test Report - Internal",
        "Opening paragraph of the alpha page talks",
        "about alpha revenue growth.",
        "Closing paragraph of the alpha page, after the table.",
        "Page 1 of 1",
    ]
    assert all(a.bottom <= b.top for a, b in itertools.pairwise(lines))
    assert all(line.bottom - line.top > 5 for line in lines)


def test_cover_title_of_an_sec_filing() -> None:
    cover = [
        "UNITED STATES",
        "SECURITIES AND EXCHANGE COMMISSION",
        "FORM 10-Q",
        "For the Quarterly Period Ended September 30, 2022",
        "Commission File No. 000-22513",
        "____________________________________",
        "AMAZON.COM, INC.",
        "____________________________________",
        "(Exact name of registrant as specified in its charter)",
    ]
    assert cover_title(cover) == (
        "AMAZON.COM, INC. Form 10-Q for the quarterly period ended September 30, 2022"
    )
    assert cover_title(["Acme Corp", "(Exact name of registrant as specified)"]) == "Acme Corp"
    assert cover_title(["UNITED STATES", "Annual report"]) == ""  # not a filing cover


def _pdf(path: Path, lines: list[tuple[int, str]], title: str | None = None) -> Path:
    canvas = Canvas(str(path), pagesize=A4, invariant=1)
    if title:
        canvas.setTitle(title)
    y = 780
    for size, text in lines:
        canvas.setFont("Helvetica", size)
        canvas.drawString(72, y, text)
        y -= size + 10
    canvas.showPage()
    canvas.save()
    return path


def test_title_from_metadata_else_largest_font_else_first_line_else_stem(tmp_path: Path) -> None:
    body = [(8, "Confidential draft"), (20, "Quarterly Operations Review"), (10, "Body text.")]
    big = _pdf(tmp_path / "review.pdf", body)
    document = pdfium.PdfDocument(big)
    try:
        assert largest_font_line(document) == "Quarterly Operations Review"
    finally:
        document.close()

    def title(path: Path) -> str:
        return parse_source(path, max_bytes=2**20).documents[0].title

    assert title(big) == "Quarterly Operations Review"
    named = _pdf(tmp_path / "named.pdf", body, title="Operations Review Q3")
    assert title(named) == "Operations Review Q3"
    word = _pdf(tmp_path / "word.pdf", body, title="Microsoft Word - review.docx")
    assert title(word) == "Quarterly Operations Review"
    flat = _pdf(tmp_path / "flat.pdf", [(10, "First line here"), (10, "Second line")])
    assert title(flat) == "First line here"  # no line stands out: the first line

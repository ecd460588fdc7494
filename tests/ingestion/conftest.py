"""Builders for parser tests: files written on ``tmp_path``, PDFs drawn with reportlab."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Table, TableStyle

PAGE_WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]  # digits would look
# like page numbers to the running-line detector, which ignores digits
PDF_TABLE = [
    ["Region", "Q1", "Q2"],
    ["Europe", "3,180", "3,402"],
    ["North America", "4,210", "4,655"],
]


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, bytes | str], Path]:
    """``write_file("a.txt", "text or bytes")`` -> the path (str is written as UTF-8)."""

    def write(name: str, content: bytes | str) -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    return write


@pytest.fixture
def build_pdf(tmp_path: Path) -> Callable[..., Path]:
    """Draw a PDF: per page a running header, two paragraphs, optionally a ruled table between
    them, and a "Page N of M" footer. ``text=False`` draws only shapes (a scan look-alike)."""

    def build(
        name: str = "report.pdf",
        *,
        pages: int = 3,
        table: bool = True,
        text: bool = True,
        user_password: str | None = None,
        title: str | None = "Acme Cloud Test Report",
    ) -> Path:
        path = tmp_path / name
        encrypt = (
            StandardEncryption(user_password, ownerPassword="owner-secret")
            if user_password is not None
            else None
        )
        canvas = Canvas(str(path), pagesize=A4, encrypt=encrypt, invariant=1)
        if title:
            canvas.setTitle(title)
        for number in range(1, pages + 1):
            if text:
                _draw_page(canvas, number, pages, table)
            else:
                canvas.setFillColor(colors.grey)
                canvas.rect(100, 200, 300, 400, fill=1)
            canvas.showPage()
        canvas.save()
        return path

    return build


def _draw_page(canvas: Canvas, number: int, pages: int, table: bool) -> None:
    width, height = A4
    canvas.setFont("Helvetica", 8)
    canvas.drawString(72, height - 40, "Acme Cloud Test Report - Internal")
    canvas.drawString(72, 30, f"Page {number} of {pages}")
    canvas.setFont("Helvetica", 11)
    y = height - 100
    word = PAGE_WORDS[(number - 1) % len(PAGE_WORDS)]
    for line in (f"Opening paragraph of the {word} page talks", f"about {word} revenue growth."):
        canvas.drawString(72, y, line)
        y -= 14
    if table:
        grid = Table(PDF_TABLE, style=TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
        _, table_height = grid.wrapOn(canvas, width, height)
        grid.drawOn(canvas, 72, y - 30 - table_height)
        y -= table_height + 60
    else:
        y -= 30
    canvas.drawString(72, y, f"Closing paragraph of the {word} page, after the table.")

"""Build examples/quarterly-report-q2-2024.pdf (a fictional Acme Cloud report) with reportlab.

Three pages with a running header and footer on each (the PDF parser removes them) and two
ruled tables (read as ``cell | cell`` rows). Output is byte-for-byte reproducible
(``invariant=1``). Run: ``.venv/bin/python examples/make_pdf.py``
"""

from __future__ import annotations

from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

OUTPUT = Path(__file__).with_name("quarterly-report-q2-2024.pdf")
TITLE = "Acme Cloud Quarterly Operations Report Q2 2024"

REVENUE = [
    ["Region", "Q1 2024 (kUSD)", "Q2 2024 (kUSD)", "Change"],
    ["North America", "4,210", "4,655", "+10.6%"],
    ["Europe", "3,180", "3,402", "+7.0%"],
    ["Asia Pacific", "1,240", "1,511", "+21.9%"],
    ["Latin America", "415", "452", "+8.9%"],
    ["Total", "9,045", "10,020", "+10.8%"],
]
INCIDENTS = [
    ["Severity", "Q1 2024", "Q2 2024", "Mean time to resolve"],
    ["SEV-1", "1", "0", "-"],
    ["SEV-2", "4", "3", "52 min"],
    ["SEV-3", "17", "12", "3.1 h"],
]
PAGES = [
    (
        "Summary",
        [
            "Revenue grew 10.8% quarter over quarter to 10.0 million USD. Growth was strongest "
            "in Asia Pacific, where the new ap-southeast region opened in April and two large "
            "customers moved their support knowledge bases to the answer service.",
            "The table below shows recognised revenue by region. Figures are in thousands of "
            "US dollars and exclude one-off professional services.",
        ],
        REVENUE,
    ),
    (
        "Reliability",
        [
            "There was no SEV-1 incident this quarter. The three SEV-2 incidents were all "
            "caused by upstream model providers; in each case the fallback chain kept the "
            "answer service available, with extractive answers served for at most 11 minutes.",
            "Mean time to resolve SEV-2 incidents fell from 71 to 52 minutes after the circuit "
            "breaker threshold was lowered in March.",
        ],
        INCIDENTS,
    ),
    (
        "Outlook",
        [
            "For Q3 2024 the plan is to open a second European region, add a shared retry "
            "budget to the model gateway, and start charging for the vector search beta. "
            "Hiring continues for the search and reliability teams.",
            "The main risks are the price of upstream model tokens, which rose 8% this "
            "quarter, and the capacity of the secondary provider during incidents.",
        ],
        None,
    ),
]


def _decorate(canvas: Canvas, doc: SimpleDocTemplate) -> None:
    """Running header and footer, identical on every page except the page number."""
    width, height = A4
    canvas.saveState()
    canvas.setFont("Helvetica", 8)
    canvas.drawString(2 * cm, height - 1.2 * cm, "Acme Cloud - Quarterly Operations Report")
    canvas.drawRightString(width - 2 * cm, height - 1.2 * cm, "Internal - do not distribute")
    canvas.drawString(2 * cm, 1.2 * cm, "Fictional demo data for ragkeel")
    canvas.drawRightString(width - 2 * cm, 1.2 * cm, f"Page {doc.page} of {len(PAGES)}")
    canvas.restoreState()


def build(path: Path = OUTPUT) -> Path:
    styles = getSampleStyleSheet()
    doc = SimpleDocTemplate(
        str(path), pagesize=A4, title=TITLE, author="Acme Cloud finance (fictional)", invariant=1
    )
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
            ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
            ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
        ]
    )
    story: list[object] = [Paragraph(TITLE, styles["Title"])]
    for number, (heading, paragraphs, rows) in enumerate(PAGES):
        if number:
            story.append(PageBreak())
        story.append(Paragraph(heading, styles["Heading2"]))
        for text in paragraphs:
            story += [Paragraph(text, styles["BodyText"]), Spacer(1, 0.3 * cm)]
        if rows:
            story.append(Table(rows, style=grid))
    doc.build(story, onFirstPage=_decorate, onLaterPages=_decorate)
    return path


if __name__ == "__main__":
    print(f"wrote {build()}")

"""Build examples/on-call-handbook.docx (a fictional Acme Cloud handbook) with python-docx.

Title and Heading styles (read as headings), bullet and numbered lists, and a table with a merged
header cell. Run: ``.venv/bin/python examples/make_docx.py``
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

from docx import Document

OUTPUT = Path(__file__).with_name("on-call-handbook.docx")
FIXED_TIME = dt.datetime(2024, 5, 1, 9, 0, 0)  # keeps the core properties stable across builds


def build(path: Path = OUTPUT) -> Path:
    doc = Document()
    props = doc.core_properties
    props.title = "Acme Cloud on-call handbook"
    props.author = "Acme Cloud reliability team (fictional)"
    props.created = props.modified = FIXED_TIME
    props.last_modified_by = "ragkeel examples"
    props.revision = 1

    doc.add_paragraph("Acme Cloud on-call handbook", style="Title")
    doc.add_paragraph(
        "This handbook is for engineers joining an on-call rotation for the first time. "
        "It explains what is expected during a shift, how to escalate, and how hand-overs work."
    )

    doc.add_heading("Before your first shift", level=1)
    for step in (
        "Shadow a full week of the rotation you are joining.",
        "Check that you can log in to the paging tool, the dashboards and the runbook site.",
        "Read the runbooks of every tier 1 service your team owns.",
        "Do a practice page with the current on-call engineer.",
    ):
        doc.add_paragraph(step, style="List Number")

    doc.add_heading("During a shift", level=1)
    doc.add_paragraph(
        "Acknowledge a page within five minutes and start working on it within fifteen. "
        "If you cannot, escalate immediately rather than waiting for the timeout."
    )
    doc.add_heading("Escalation", level=2)
    doc.add_paragraph(
        "Escalate to the secondary on-call first, then to the engineering manager on duty. "
        "For a suspected security incident, page the security rotation directly."
    )
    for item in (
        "SEV-1: customer-facing outage of a tier 1 service; page the incident commander.",
        "SEV-2: major degradation or a tier 1 service on a fallback path for over 15 minutes.",
        "SEV-3: minor degradation with a workaround; handle during working hours.",
    ):
        doc.add_paragraph(item, style="List Bullet")

    doc.add_heading("Response targets", level=2)
    table = doc.add_table(rows=5, cols=3)
    table.style = "Table Grid"
    merged = table.cell(0, 1).merge(table.cell(0, 2))
    table.cell(0, 0).text = "Severity"
    merged.text = "Targets"
    for row, values in enumerate(
        (
            ("", "Acknowledge", "First update to customers"),
            ("SEV-1", "5 minutes", "15 minutes"),
            ("SEV-2", "10 minutes", "30 minutes"),
            ("SEV-3", "1 business day", "not required"),
        ),
        start=1,
    ):
        for col, value in enumerate(values):
            table.cell(row, col).text = value

    doc.add_heading("Hand-over", level=1)
    doc.add_paragraph(
        "Shifts change on Mondays at 10:00 local time. Write a short hand-over note listing "
        "open incidents, silenced alerts and anything the next engineer should watch. "
        "On-call engineers receive one day off in lieu for every weekend on duty."
    )
    buffer = io.BytesIO()
    doc.save(buffer)
    path.write_bytes(_with_fixed_timestamps(buffer.getvalue()))
    return path


def _with_fixed_timestamps(data: bytes) -> bytes:
    """Rewrite the zip with constant entry times so rebuilding gives identical bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


if __name__ == "__main__":
    print(f"wrote {build()}")

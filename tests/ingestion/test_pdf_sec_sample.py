"""The SEC 10-Q sample through the PDF parser (issue 14): the pypdfium2 text path must leave
every table block and its page exactly as pdfplumber gave them before, and give the filings
real titles. Expected values were taken from the parser's output before issue 14 (pdfplumber
on every page). Skipped when ../shared/datasets/sec-10q-sample is absent."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ragkeel.ingestion.parsers import parse_source
from ragkeel.types import ParsedDocument

DOCS = Path("/work/shared/datasets/sec-10q-sample/docs")

pytestmark = pytest.mark.skipif(not DOCS.is_dir(), reason="SEC 10-Q sample not available")

# file -> (table blocks, sha256 prefix of [[page, text], ...] of every table block, in order)
TABLES = {
    "2022 Q3 AAPL.pdf": (30, "261ea81e4bbf0a31"),
    "2022 Q3 AMZN.pdf": (25, "6e4e3af37307bc78"),
    "2022 Q3 INTC.pdf": (4, "cdf171e4dc7f0079"),
    "2022 Q3 MSFT.pdf": (5, "f8a11ab6d17789d2"),
    "2022 Q3 NVDA.pdf": (40, "8e69b12b832e1f7f"),
}
# a few rows, readable, with their pages
ROWS = {
    "2022 Q3 AAPL.pdf": [
        (4, "Total net sales | 82,959 | 81,434 | 304,182 | 282,457"),
        (6, "Total assets | $336,309 | $351,002"),
        (10, "Total net sales (4) | $82,959 | $81,434 | $304,182 | $282,457"),
        (20, "Total gross margin | $35,885 | $35,255 | $132,687 | $117,662"),
    ],
    "2022 Q3 AMZN.pdf": [
        (
            3,
            "Net cash provided by (used in) operating activities | 7,313 | 11,404 | 24,241 | "
            "17,579 | 54,671 | 39,665",
        ),
        (4, "Total net sales | 110,812 | 127,101 | 332,410 | 364,779"),
        (20, "Online stores (1) | $49,942 | $53,489 | $156,000 | $155,473"),
    ],
    "2022 Q3 INTC.pdf": [(38, "Investments in our process technology")],
    "2022 Q3 MSFT.pdf": [
        (
            20,
            "2012 issuance of $2.3 billion | 2022 | – | 2042 | 2.13% | – | 3.50% | 2.24% | – | "
            "3.57% | 1,204 | 1,204",
        ),
        (64, "Vesting Date | Percentage of SAs"),
    ],
    "2022 Q3 NVDA.pdf": [
        (3, "Revenue | $5,931 | $7,103 | $20,923 | $19,271"),
        (8, "Net cash provided by operating activities | 3,393 | 6,075"),
        (19, "0.309% Notes Due 2023 | 0.6 | 0.41% | $1,250 | $1,250"),
        (23, "Total revenue | $5,931 | $7,103 | $20,923 | $19,271"),
    ],
}
TITLES = {
    "2022 Q3 AAPL.pdf": "Apple Inc. Form 10-Q for the quarterly period ended June 25, 2022",
    "2022 Q3 AMZN.pdf": (
        "AMAZON.COM, INC. Form 10-Q for the quarterly period ended September 30, 2022"
    ),
    "2022 Q3 INTC.pdf": "10-Q - 10/28/2022 - Intel Corporation",  # the PDF's /Title
    "2022 Q3 MSFT.pdf": "Form 10-Q for Microsoft Corp filed 10/24/2022",  # the PDF's /Title
    "2022 Q3 NVDA.pdf": (
        "NVIDIA CORPORATION Form 10-Q for the quarterly period ended October 30, 2022"
    ),
}
PAGES = {
    "2022 Q3 AAPL.pdf": 28,
    "2022 Q3 AMZN.pdf": 50,
    "2022 Q3 INTC.pdf": 61,
    "2022 Q3 MSFT.pdf": 80,
    "2022 Q3 NVDA.pdf": 49,
}


def _parse(name: str) -> ParsedDocument:
    (document,) = parse_source(DOCS / name, max_bytes=100 * 2**20).documents
    return document


def _check(name: str, document: ParsedDocument) -> None:
    tables = [[b.page, b.text] for b in document.blocks if b.kind == "table"]
    digest = hashlib.sha256(json.dumps(tables, ensure_ascii=False).encode()).hexdigest()
    count, prefix = TABLES[name]
    rows = {(page, row) for page, text in tables for row in text.split("\n")}
    assert [row for row in ROWS[name] if row not in rows] == []
    assert (len(tables), digest[:16]) == (count, prefix)  # every table block, unchanged
    assert document.title == TITLES[name]
    assert document.metadata == {"pages": PAGES[name]}


@pytest.fixture(scope="module")
def apple() -> ParsedDocument:
    return _parse("2022 Q3 AAPL.pdf")


def test_apple_10q_tables_unchanged_and_titled(apple: ParsedDocument) -> None:
    """The default suite's share: one filing (~2 s idle)."""
    _check("2022 Q3 AAPL.pdf", apple)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(TABLES) - {"2022 Q3 AAPL.pdf"}))
def test_other_10q_tables_unchanged_and_titled(name: str) -> None:
    _check(name, _parse(name))


def test_text_outside_tables_is_all_there(apple: ParsedDocument) -> None:
    """The fast path's text (pypdfium2) holds what pdfplumber read on pages without tables,
    apart from spacing: the cover page's lines, page 2's share count."""

    def page(number: int) -> str:
        return " ".join(" ".join(b.text for b in apple.blocks if b.page == number).split())

    assert "FORM 10-Q (Mark One) ☒ QUARTERLY REPORT PURSUANT TO SECTION 13" in page(1)
    assert "Apple Inc. (Exact name of Registrant as specified in its charter)" in page(1)
    assert "16,070,752,000 shares of common stock were issued and outstanding" in page(2)

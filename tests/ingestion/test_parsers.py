"""Parsers: every format's structure, and every error code on real bad input."""

from __future__ import annotations

import builtins
import importlib.util
import io
import json
import os
import random
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docx
import pytest

from ragkeel.errors import IngestError
from ragkeel.ingestion.parsers import SUPPORTED_SUFFIXES, parse_file, parse_source
from ragkeel.ingestion.parsers.pdf_layout import Line, remove_repeated_lines, render_table
from ragkeel.types import ParsedDocument

WriteFile = Callable[[str, bytes | str], Path]  # fixtures from conftest.py
BuildPdf = Callable[..., Path]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCIFACT = Path("/work/shared/datasets/scifact/corpus.jsonl")
SEC_AAPL = Path("/work/shared/datasets/sec-10q-sample/docs/2022 Q3 AAPL.pdf")
LIMIT = 10 * 1024 * 1024


def one(path: Path) -> ParsedDocument:
    documents = parse_file(path, max_bytes=LIMIT)
    assert len(documents) == 1
    return documents[0]


def error_of(path: Path, max_bytes: int = LIMIT) -> IngestError:
    with pytest.raises(IngestError) as caught:
        parse_source(path, max_bytes=max_bytes)
    assert path.name in caught.value.message  # messages name the file
    assert caught.value.hint  # ... and say what to do
    return caught.value


# --- registry and whole-file checks -------------------------------------------------------


def test_supported_suffixes() -> None:
    expected = {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".csv", ".json"}
    assert expected | {".jsonl"} == SUPPORTED_SUFFIXES


@pytest.mark.parametrize("name", ["slides.pptx", "Makefile", "archive.tar.gz"])
def test_unsupported_type(write_file: WriteFile, name: str) -> None:
    error = error_of(write_file(name, "content"))
    assert error.code == "UNSUPPORTED_TYPE"
    assert ".pdf" in str(error) and ".docx" in str(error)  # names what is supported


def test_suffix_is_case_insensitive(write_file: WriteFile) -> None:
    assert one(write_file("NOTES.TXT", "hello")).blocks[0].text == "hello"


def test_too_large_is_decided_by_stat_without_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:
        handle.truncate(64 * 1024**3)  # sparse: 64 GiB by stat(), no disk used
    opened: list[str] = []
    real_open = builtins.open

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    error = error_of(path, max_bytes=1024)
    assert error.code == "TOO_LARGE"
    assert "64.0 GB" in error.message
    assert str(path) not in opened


def test_size_limit_is_inclusive(write_file: WriteFile) -> None:
    path = write_file("exact.txt", "12345")
    assert parse_file(path, max_bytes=5)
    assert error_of(path, max_bytes=4).code == "TOO_LARGE"


@pytest.mark.parametrize("name", ["empty.txt", "empty.pdf", "empty.docx", "empty.jsonl"])
def test_empty_file(write_file: WriteFile, name: str) -> None:
    assert error_of(write_file(name, b"")).code == "EMPTY"


def test_whitespace_only_text_is_empty(write_file: WriteFile) -> None:
    assert error_of(write_file("blank.txt", " \n\t\n\u00a0\u200b\n")).code == "EMPTY"


def test_missing_file_and_dangling_symlink(tmp_path: Path) -> None:
    assert error_of(tmp_path / "missing.txt").code == "READ_ERROR"
    link = tmp_path / "dangling.txt"
    link.symlink_to(tmp_path / "nowhere.txt")
    assert error_of(link).code == "READ_ERROR"


def test_directory_named_like_a_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").mkdir()
    assert error_of(tmp_path / "notes.txt").code == "READ_ERROR"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifo_is_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)  # opening it for reading would block forever
    assert error_of(fifo).code == "READ_ERROR"


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: chmod 000 does not stop root from reading; the READ_ERROR mapping "
    "is covered by the missing-file, dangling-symlink, directory and FIFO tests",
)
def test_permission_denied(write_file: WriteFile) -> None:
    path = write_file("secret.txt", "top secret")
    path.chmod(0)
    try:
        error = error_of(path)
    finally:
        path.chmod(0o600)
    assert error.code == "READ_ERROR"
    assert "permission denied" in error.message


def test_unexpected_library_failure_becomes_parse_error(write_file: WriteFile) -> None:
    deep = write_file("deep.json", "[" * 200_000 + "]" * 200_000)  # json raises RecursionError
    error = error_of(deep)
    assert error.code == "PARSE_ERROR"
    assert error.__cause__ is not None


# --- text ------------------------------------------------------------------------------------


def test_txt_paragraphs_and_title(write_file: WriteFile) -> None:
    doc = one(
        write_file("notes.txt", "\n  Release notes  \nline two\n\n\nSecond para\r\n\r\nThird")
    )
    assert doc.title == "Release notes"
    assert [b.text for b in doc.blocks] == ["Release notes\nline two", "Second para", "Third"]
    assert {b.kind for b in doc.blocks} == {"paragraph"}


def test_txt_long_first_line_title_is_trimmed(write_file: WriteFile) -> None:
    doc = one(write_file("long.txt", "word " * 100))
    assert len(doc.title) <= 121 and doc.title.endswith("…")


def test_txt_latin1_decodes(write_file: WriteFile) -> None:
    text = "Le café était très bon à Noël, naïve façade.\nGrüße aus Köln.\n"
    doc = one(write_file("latin1.txt", text.encode("latin-1")))
    assert "café" in doc.blocks[0].text and "Grüße aus Köln" in doc.blocks[0].text


def test_txt_short_latin1_and_cp1252(write_file: WriteFile) -> None:
    assert one(write_file("short.txt", "café".encode("latin-1"))).blocks[0].text == "café"
    quoted = "He said “rotate the key” — it costs €5."
    assert one(write_file("cp.txt", quoted.encode("cp1252"))).blocks[0].text == quoted


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_txt_byte_order_marks(write_file: WriteFile, encoding: str) -> None:
    doc = one(write_file("bom.txt", "Zürich office".encode(encoding)))
    assert doc.blocks[0].text == "Zürich office"


@pytest.mark.parametrize("nul_free", [False, True])
def test_txt_random_bytes_are_a_decode_error(write_file: WriteFile, nul_free: bool) -> None:
    data = random.Random(7).randbytes(4096)
    if nul_free:
        data = data.replace(b"\x00", b"\x01")
    assert error_of(write_file("random.txt", data)).code == "DECODE_ERROR"


# --- markdown --------------------------------------------------------------------------------

MARKDOWN = """---
title: Key runbook
owner: "platform"
tags: [a, b]
---
Intro before any heading.

# API keys

Keys are **secret** and have [scopes](https://example.invalid/scopes).

## How do I rotate an API key?

1. Create a new key
2. Deploy it
   - to every instance
3. Revoke the old key

```bash
acme keys rotate --id 42
```

| Scope | Allows |
|:------|-------:|
| read  | list   |
| write | create |

Setext section
--------------

> Quoted advice.
"""


def test_markdown_structure(write_file: WriteFile) -> None:
    doc = one(write_file("keys.md", MARKDOWN))
    assert doc.title == "API keys"
    assert doc.metadata == {"title": "Key runbook", "owner": "platform"}
    kinds = [(b.kind, b.text.split("\n")[0]) for b in doc.blocks]
    assert kinds == [
        ("paragraph", "Intro before any heading."),
        ("heading", "API keys"),
        ("paragraph", "Keys are secret and have scopes."),
        ("heading", "How do I rotate an API key?"),
        ("list", "1. Create a new key"),
        ("code", "acme keys rotate --id 42"),
        ("table", "Scope | Allows"),
        ("heading", "Setext section"),
        ("paragraph", "Quoted advice."),
    ]
    by_text = {b.text.split("\n")[0]: b for b in doc.blocks}
    assert by_text["Intro before any heading."].heading_path == ()
    assert by_text["API keys"].level == 1
    assert by_text["How do I rotate an API key?"].level == 2
    assert by_text["1. Create a new key"].heading_path == (
        "API keys",
        "How do I rotate an API key?",
    )
    assert by_text["Scope | Allows"].text == "Scope | Allows\nread | list\nwrite | create"
    assert by_text["Setext section"].heading_path == ("API keys", "Setext section")
    assert "to every instance" in by_text["1. Create a new key"].text
    assert all("---" not in b.text and "owner" not in b.text for b in doc.blocks)


def test_markdown_inline_code_is_kept_literally(write_file: WriteFile) -> None:
    """Inline code lost its ``<placeholder>`` (taken for an HTML tag once the backticks were
    gone): the runbook step read "--key-id ." and the model cited the wrong source for it."""
    doc = one(
        write_file(
            "runbook.md",
            "# Keys\n\nRun `ragkeel keys revoke --key-id <old-key-id>` and keep `**raw**`;"
            " <b>tags</b> and [`links`](http://x) are still cleaned.\n",
        )
    )
    text = " ".join(b.text for b in doc.blocks)
    assert "ragkeel keys revoke --key-id <old-key-id>" in text
    assert "keep **raw**;" in text and " tags and links are still cleaned." in text


def test_markdown_title_falls_back_to_stem(write_file: WriteFile) -> None:
    doc = one(write_file("no-heading.markdown", "## Only a level two\n\ntext"))
    assert doc.title == "no-heading"


# --- html ------------------------------------------------------------------------------------

HTML = """<!doctype html><html><head><title>Status — Acme</title>
<style>p {color: red}</style><script>var tracking = "do not index";</script></head><body>
<header><nav><a href="/">Home</a><a href="/docs">Docs</a></nav></header>
<div role="navigation">Breadcrumb trail</div>
<p>Outside main: ignored</p>
<main>
  <h1>Service status</h1>
  <p>All systems
     are <b>operational</b>.</p>
  <span aria-hidden="true">decorative icon</span>
  <h2>Latency</h2>
  <table><tr><th>Region</th><th>p95</th></tr><tr><td>eu-west</td><td>800 ms</td></tr></table>
  <h3>Notes</h3>
  <ul><li>first</li><li>second<ul><li>nested</li></ul></li></ul>
  <pre>line one
  line two</pre>
  <form><input value="search"></form>
</main>
<aside>Promo</aside><footer>© Acme footer</footer></body></html>"""


def test_html_structure_and_boilerplate_removal(write_file: WriteFile) -> None:
    doc = one(write_file("status.html", HTML))
    assert doc.title == "Status — Acme"
    text = "\n".join(b.text for b in doc.blocks)
    for boilerplate in ("Home", "Breadcrumb", "tracking", "color", "ignored", "decorative",
                        "Promo", "footer", "search"):  # fmt: skip
        assert boilerplate not in text
    kinds = [(b.kind, b.text) for b in doc.blocks]
    assert kinds == [
        ("heading", "Service status"),
        ("paragraph", "All systems are operational."),
        ("heading", "Latency"),
        ("table", "Region | p95\neu-west | 800 ms"),
        ("heading", "Notes"),
        ("list", "- first\n- second\n  - nested"),
        ("code", "line one\n  line two"),
    ]
    assert doc.blocks[3].heading_path == ("Service status", "Latency")
    assert doc.blocks[5].heading_path == ("Service status", "Latency", "Notes")


def test_html_article_header_is_content_page_header_is_not(write_file: WriteFile) -> None:
    page = """<html><body><header>Site banner</header>
    <article><header><h1>Post title</h1></header><p>Post body.</p></article>
    <footer>Site footer</footer></body></html>"""
    doc = one(write_file("post.html", page))
    assert [b.text for b in doc.blocks] == ["Post title", "Post body."]
    assert doc.title == "Post title"


def test_html_declared_legacy_charset(write_file: WriteFile) -> None:
    page = '<html><head><meta charset="windows-1252"></head><body><h1>Café “menu”</h1></body>'
    doc = one(write_file("menu.htm", page.encode("cp1252")))
    assert doc.title == "Café “menu”"  # no <title>: first h1


def test_html_without_text_is_empty(write_file: WriteFile) -> None:
    page = "<html><body><nav>Only navigation</nav><script>x()</script></body></html>"
    assert error_of(write_file("nav.html", page)).code == "EMPTY"


# --- pdf -------------------------------------------------------------------------------------


def test_pdf_pages_tables_order_and_running_lines(build_pdf: BuildPdf) -> None:
    doc = one(build_pdf(pages=3))
    assert doc.title == "Acme Cloud Test Report"
    assert doc.metadata == {"pages": 3}
    assert [b.page for b in doc.blocks] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    page_two = [b for b in doc.blocks if b.page == 2]
    assert [b.kind for b in page_two] == ["paragraph", "table", "paragraph"]
    assert (
        page_two[0].text == "Opening paragraph of the bravo page talks\nabout bravo revenue growth."
    )
    assert page_two[2].text == "Closing paragraph of the bravo page, after the table."
    assert (
        page_two[1].text
        == "Region | Q1 | Q2\nEurope | 3,180 | 3,402\nNorth America | 4,210 | 4,655"
    )
    text = "\n".join(b.text for b in doc.blocks)
    assert "Internal" not in text and "Page 2 of 3" not in text  # header/footer removed


def test_pdf_running_lines_kept_below_three_pages(build_pdf: BuildPdf) -> None:
    text = "\n".join(b.text for b in one(build_pdf(pages=2, table=False)).blocks)
    assert "Acme Cloud Test Report - Internal" in text and "Page 1 of 2" in text


def test_pdf_title_falls_back_to_first_line(build_pdf: BuildPdf) -> None:
    doc = one(build_pdf(pages=1, table=False, title=None))  # reportlab writes "untitled"
    assert doc.title == "Acme Cloud Test Report - Internal"


def test_pdf_truncated_is_parse_error(build_pdf: BuildPdf, write_file: WriteFile) -> None:
    data = build_pdf().read_bytes()
    assert error_of(write_file("cut.pdf", data[: len(data) // 2])).code == "PARSE_ERROR"


def test_pdf_not_a_pdf_is_parse_error(write_file: WriteFile) -> None:
    assert error_of(write_file("fake.pdf", "just text, no PDF")).code == "PARSE_ERROR"


def test_pdf_with_password_is_encrypted_error(build_pdf: BuildPdf) -> None:
    error = error_of(build_pdf("locked.pdf", user_password="s3cret"))
    assert error.code == "ENCRYPTED"
    assert "password" in error.message


def test_pdf_encrypted_with_empty_user_password_is_ingested(build_pdf: BuildPdf) -> None:
    doc = one(build_pdf("restricted.pdf", user_password=""))
    assert any(b.kind == "table" for b in doc.blocks)


def test_pdf_without_text_is_empty_and_mentions_ocr(build_pdf: BuildPdf) -> None:
    error = error_of(build_pdf("scan.pdf", text=False, title=None))
    assert error.code == "EMPTY"
    assert "OCR" in str(error)


def test_render_table_merges_symbols_and_drops_empty_columns() -> None:
    rows: list[list[str | None]] = [
        ["", "Three Months", None, "", "Nine Months", None],
        ["Products", "$", "63,355", "", "$", "245,241"],
        ["Services", "19,604", None, "", "58,941", None],
        ["Margin", "41.2", "%", "", "(10", ")"],
        ["Multi\nline label", None, None, None, None, None],
    ]
    assert render_table(rows).split("\n") == [
        " | Three Months | Nine Months",
        "Products | $63,355 | $245,241",
        "Services | 19,604 | 58,941",
        "Margin | 41.2% | (10)",
        "Multi line label",
    ]


def test_repeated_lines_need_half_the_pages_and_the_page_edges() -> None:
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]

    def page(number: int, header: str) -> list[Line]:
        body = [f"{word} {words[number]} line" for word in words]  # distinct per page
        texts = [header, *body[:3], "Acme header", *body[3:], f"Page {number} of 4"]
        return [Line(text=t, top=10.0 * i, bottom=10.0 * i + 8) for i, t in enumerate(texts)]

    pages = [page(n, "Acme header" if n < 3 else f"{words[n]} title") for n in range(4)]
    kept = remove_repeated_lines(pages)
    texts = [[ln.text for ln in lines] for lines in kept]
    assert texts[0][0] == "alpha alpha line"  # header on 2 of 4 pages (50%): removed
    assert all(not t.startswith("Page ") for lines in texts for t in lines)  # "Page # of #"
    assert all("Acme header" in lines for lines in texts)  # the mid-page copy is body text
    assert texts[3][0] == "delta title"
    assert remove_repeated_lines(pages[:2]) == pages[:2]  # fewer than 3 pages: nothing removed


@pytest.mark.slow
@pytest.mark.skipif(not SEC_AAPL.exists(), reason="SEC 10-Q sample not available")
def test_pdf_real_10q_table_rows_are_readable() -> None:
    doc = one(SEC_AAPL)
    rows = [line for b in doc.blocks if b.kind == "table" for line in b.text.split("\n")]
    assert "Total net sales | 82,959 | 81,434 | 304,182 | 282,457" in rows
    assert doc.metadata == {"pages": 28}


# --- docx ------------------------------------------------------------------------------------


def _docx(path: Path, *, core_title: str = "") -> Path:
    document = docx.Document()
    document.core_properties.title = core_title
    document.add_paragraph("Handbook", style="Title")
    document.add_paragraph("Intro paragraph.")
    document.add_heading("Escalation", level=1)
    document.add_paragraph("first step", style="List Number")
    document.add_paragraph("second step", style="List Number")
    table = document.add_table(rows=2, cols=3)
    merged = table.cell(0, 0).merge(table.cell(0, 1))
    merged.text = "Severity and target"
    table.cell(0, 2).text = "Owner"
    for col, value in enumerate(["SEV-1", "5 min", "on-call"]):
        table.cell(1, col).text = value
    document.add_heading("Details", level=2)
    document.add_paragraph("After the table.")
    document.save(str(path))
    return path


def test_docx_structure_in_body_order(tmp_path: Path) -> None:
    doc = one(_docx(tmp_path / "handbook.docx"))
    assert doc.title == "Handbook"
    assert [(b.kind, b.level, b.text) for b in doc.blocks] == [
        ("heading", 1, "Handbook"),
        ("paragraph", 0, "Intro paragraph."),
        ("heading", 1, "Escalation"),
        ("list", 0, "- first step\n- second step"),
        ("table", 0, "Severity and target | Owner\nSEV-1 | 5 min | on-call"),
        ("heading", 2, "Details"),
        ("paragraph", 0, "After the table."),
    ]
    assert doc.blocks[-1].heading_path == ("Escalation", "Details")


def test_docx_core_title_wins(tmp_path: Path) -> None:
    assert one(_docx(tmp_path / "h.docx", core_title="Official title")).title == "Official title"


def test_docx_not_a_zip_is_parse_error(write_file: WriteFile) -> None:
    assert error_of(write_file("fake.docx", "plain text pretending")).code == "PARSE_ERROR"


def test_docx_zip_without_word_parts_is_parse_error(write_file: WriteFile) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "not a word document")
    assert error_of(write_file("odd.docx", buffer.getvalue())).code == "PARSE_ERROR"


# --- csv -------------------------------------------------------------------------------------


def test_csv_rows_in_self_describing_blocks(write_file: WriteFile) -> None:
    lines = ["service,owner,tier"] + [f"svc-{n},team {n},{n % 3}" for n in range(45)]
    doc = one(write_file("catalog.csv", "\n".join(lines)))
    assert doc.title == "catalog"
    assert doc.metadata == {"rows": 45, "columns": "service,owner,tier"}
    assert [b.kind for b in doc.blocks] == ["table"] * 3
    assert [len(b.text.split("\n")) for b in doc.blocks] == [21, 21, 6]
    assert all(b.text.startswith("service | owner | tier\n") for b in doc.blocks)
    assert doc.blocks[0].text.split("\n")[1] == "service: svc-0 | owner: team 0 | tier: 0"


def test_csv_sniffs_semicolons_quotes_and_latin1(write_file: WriteFile) -> None:
    data = 'name;city;note\n"Müller, A.";Köln;"says ""hi"""\nBrun;Genève;\n'.encode("latin-1")
    doc = one(write_file("people.csv", data))
    assert doc.blocks[0].text.split("\n")[1:] == [
        'name: Müller, A. | city: Köln | note: says "hi"',
        "name: Brun | city: Genève",
    ]


def test_csv_header_only_is_empty(write_file: WriteFile) -> None:
    assert error_of(write_file("header.csv", "a,b,c\n")).code == "EMPTY"


# --- json and jsonl --------------------------------------------------------------------------


def test_json_flattened_by_top_level_key(write_file: WriteFile) -> None:
    value = {"title": "Limits", "plans": {"free": {"rpm": 60}}, "paths": ["/a", {"p": None}]}
    doc = one(write_file("limits.json", json.dumps(value)))
    assert doc.title == "Limits"
    assert [(b.heading_path, b.text) for b in doc.blocks] == [
        (("title",), "title: Limits"),
        (("plans",), "plans.free.rpm: 60"),
        (("paths",), "paths[0]: /a\npaths[1].p: null"),
    ]


def test_json_invalid_reports_line_and_column(write_file: WriteFile) -> None:
    error = error_of(write_file("bad.json", '{\n  "a": 1,\n  "b": \n}'))
    assert error.code == "PARSE_ERROR"
    assert "line 4, column 1" in error.message


BEIR_LINES = [
    {"_id": "d1", "title": "First", "text": "Alpha text.\n\nSecond para.", "year": 2020},
    '{"_id": "d2", "title": "Broken", "text": ',
    {"_id": "d3", "title": "", "text": "No title here.", "metadata": {"url": "https://x.invalid"}},
]


def _jsonl(write_file: WriteFile, name: str, lines: list[Any]) -> Path:
    rendered = [line if isinstance(line, str) else json.dumps(line) for line in lines]
    return write_file(name, "\n".join(rendered) + "\n")


def test_beir_corpus_with_a_broken_line(write_file: WriteFile) -> None:
    outcome = parse_source(_jsonl(write_file, "corpus.jsonl", BEIR_LINES), max_bytes=LIMIT)
    assert [d.external_id for d in outcome.documents] == ["d1", "d3"]
    first, third = outcome.documents
    assert first.title == "First" and [b.text for b in first.blocks] == [
        "Alpha text.",
        "Second para.",
    ]
    assert first.metadata == {"year": 2020}
    assert third.title == "" and third.metadata == {"url": "https://x.invalid"}
    [(label, error)] = outcome.record_errors
    assert label == "corpus.jsonl:2"
    assert error.code == "PARSE_ERROR" and "corpus.jsonl:2" in error.message
    assert len(parse_file(_jsonl(write_file, "corpus.jsonl", BEIR_LINES), max_bytes=LIMIT)) == 2


def test_beir_detected_by_fields_and_duplicate_ids(write_file: WriteFile) -> None:
    lines = [{"_id": "a", "text": "one"}, {"_id": "a", "text": "again"}, {"_id": 7, "text": "x"}]
    outcome = parse_source(_jsonl(write_file, "docs.jsonl", lines), max_bytes=LIMIT)
    assert [d.external_id for d in outcome.documents] == ["a", "7"]
    assert [(label, e.code) for label, e in outcome.record_errors] == [
        ("docs.jsonl:2", "PARSE_ERROR")
    ]


def test_generic_jsonl_records(write_file: WriteFile) -> None:
    lines = [
        {"id": "faq-1", "title": "Rotate keys", "content": "Use acme keys create.", "lang": "en"},
        {"question": "Where?", "answer": "Here"},
        {"id": "faq-3", "body": "   "},
    ]
    outcome = parse_source(_jsonl(write_file, "faq.jsonl", lines), max_bytes=LIMIT)
    first, second = outcome.documents
    assert (first.external_id, first.title, first.metadata) == (
        "faq-1",
        "Rotate keys",
        {"lang": "en"},
    )
    assert first.blocks[0].text == "Use acme keys create."
    assert second.external_id == "line-2"
    assert second.blocks[0].text == "question: Where?\nanswer: Here"
    assert [(label, e.code) for label, e in outcome.record_errors] == [("faq.jsonl:3", "EMPTY")]


def test_jsonl_all_lines_broken_is_parse_error(write_file: WriteFile) -> None:
    error = error_of(_jsonl(write_file, "junk.jsonl", ["{oops", "not json", "[1,"]))
    assert error.code == "PARSE_ERROR" and "3 records" in error.message


@pytest.mark.slow
@pytest.mark.skipif(not SCIFACT.exists(), reason="SciFact corpus not available")
def test_scifact_corpus_streams_quickly() -> None:
    started = time.perf_counter()
    outcome = parse_source(SCIFACT, max_bytes=64 * 1024 * 1024)
    elapsed = time.perf_counter() - started
    assert len(outcome.documents) == 5183 and not outcome.record_errors
    assert elapsed < 10  # ~0.6 s on a quiet machine; generous bound for loaded CI runners


# --- the shipped demo corpus -----------------------------------------------------------------


def test_examples_corpus_parses() -> None:
    files = sorted(p for p in EXAMPLES.iterdir() if p.suffix in SUPPORTED_SUFFIXES)
    assert {p.suffix for p in files} >= {".md", ".html", ".pdf", ".docx", ".csv", ".json", ".txt"}
    assert sum(p.stat().st_size for p in EXAMPLES.iterdir()) < 500 * 1024
    docs = {p.name: one(p) for p in files}
    md = docs["api-key-rotation.md"]
    assert any(b.kind == "heading" and b.text == "How do I rotate an API key?" for b in md.blocks)
    pdf = docs["quarterly-report-q2-2024.pdf"]
    assert (
        pdf.metadata == {"pages": 3}
        and (EXAMPLES / "quarterly-report-q2-2024.pdf").stat().st_size < 100 * 1024
    )
    pdf_rows = [ln for b in pdf.blocks if b.kind == "table" for ln in b.text.split("\n")]
    assert "North America | 4,210 | 4,655 | +10.6%" in pdf_rows
    assert not any("do not distribute" in b.text for b in pdf.blocks)
    html_text = " ".join(b.text for b in docs["service-levels.html"].blocks)
    assert "Sign in" not in html_text and "eu-west | 99.95% | 800 ms | 24/7" in html_text


@pytest.mark.parametrize("script", ["make_pdf.py", "make_docx.py"])
def test_example_builders_reproduce_the_committed_files(script: str, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(script[:-3], EXAMPLES / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build(tmp_path / module.OUTPUT.name)
    assert built.read_bytes() == module.OUTPUT.read_bytes()

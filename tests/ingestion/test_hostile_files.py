"""Hostile files (issue 9): decompression bombs, lying ZIP headers, page bombs, parse time.

Files come from ``ragkeel.ingestion.testing`` (built in memory in milliseconds). Memory is
measured with tracemalloc around the parse (deterministic, unlike wall time); time bounds live
in bench/hostile_files.py and docs/benchmarks.md.
"""

from __future__ import annotations

import io
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docx
import pytest

from ragkeel.container import Container
from ragkeel.errors import IngestError
from ragkeel.ingestion import testing as hostile
from ragkeel.ingestion.parsers import ParseLimits, parse_source
from ragkeel.settings import load_settings

MIB = 1024 * 1024
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WriteFile = Callable[[str, bytes | str], Path]


class Peak:
    bytes = 0


@contextmanager
def peak_memory() -> Iterator[Peak]:
    peak = Peak()
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak.bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def refusal(path: Path, limits: ParseLimits | None = None) -> IngestError:
    with pytest.raises(IngestError) as caught:
        parse_source(path, max_bytes=100 * MIB, limits=limits)
    return caught.value


# --- ZIP-based formats (DOCX) ----------------------------------------------------------------


def test_docx_bomb_is_refused_from_the_directory_in_small_memory(write_file: WriteFile) -> None:
    path = write_file("bomb.docx", hostile.docx_bomb(1024 * MIB))  # ~1 MB -> 1 GiB
    assert path.stat().st_size < 2 * MIB
    with peak_memory() as peak:
        error = refusal(path)
    assert error.code == "TOO_LARGE"
    assert "1.0 GB" in error.message and "256.0 MB limit" in error.message
    assert "max_inflated_bytes" in str(error)
    assert peak.bytes < 16 * MIB  # the file's own bytes and the directory, nothing inflated


def test_docx_member_compressing_like_a_bomb_is_refused_by_its_ratio(
    write_file: WriteFile,
) -> None:
    error = refusal(write_file("dense.docx", hostile.docx_bomb(8 * MIB)))
    assert error.code == "TOO_LARGE"
    assert "word/document.xml" in error.message and "500x limit" in error.message


@pytest.mark.parametrize("prefix_crc", [False, True], ids=["crc-of-all", "crc-of-prefix"])
def test_docx_lying_header_cannot_inflate_past_what_it_declares(
    prefix_crc: bool, write_file: WriteFile
) -> None:
    # The body inflates to 256 MiB; the headers declare 20 kB and an ordinary ratio. zipfile's
    # read() inflates the whole stream before it cuts at the declared size (2.1 GB peak for
    # 1 GiB before the fix); with the prefix's CRC nothing even looks wrong at 20 kB.
    liar = hostile.docx_lying_header(256 * MIB, declared_bytes=20_000, prefix_crc=prefix_crc)
    path = write_file("liar.docx", liar)
    with peak_memory() as peak:
        error = refusal(path)
    assert error.code == "PARSE_ERROR"  # the CRC, or the XML cut at 20 kB
    assert peak.bytes < 16 * MIB


def test_zip_member_count_is_bounded(write_file: WriteFile) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(30):
            archive.writestr(f"part{n}.xml", "<x/>")
    path = write_file("many.docx", buffer.getvalue())
    error = refusal(path, ParseLimits(max_archive_members=20))
    assert error.code == "TOO_LARGE" and "30 members" in error.message


def test_real_docx_files_pass_the_default_bounds(tmp_path: Path) -> None:
    # A generated form with a large empty table is the most compressible real DOCX we know
    # (document.xml ~2.4 MB at ~220x): the default ratio bound must let it through.
    form = docx.Document()
    form.add_heading("Inspection form", level=1)
    form.add_table(rows=3000, cols=10)
    form.add_paragraph("Signed off by the duty engineer.")
    form.save(str(tmp_path / "form.docx"))
    with zipfile.ZipFile(tmp_path / "form.docx") as archive:
        body = archive.getinfo("word/document.xml")
    assert body.file_size > MIB and body.file_size / body.compress_size > 150
    for path in (tmp_path / "form.docx", EXAMPLES / "on-call-handbook.docx"):
        (document,) = parse_source(path, max_bytes=100 * MIB).documents
        assert document.blocks


# --- PDF ---------------------------------------------------------------------------------------


def test_pdf_page_bomb_is_too_large_before_any_page_is_read(write_file: WriteFile) -> None:
    path = write_file("pages.pdf", hostile.pdf_pages(10_000))  # ~2 MB of blank pages
    error = refusal(path)
    assert error.code == "TOO_LARGE"  # it used to take 13 s and say EMPTY ("scanned image")
    assert "10000 pages" in error.message and "2000-page limit" in error.message


def test_pdf_page_count_that_lies_is_still_bounded(write_file: WriteFile) -> None:
    path = write_file("liar.pdf", hostile.pdf_pages(8, declared_pages=1))
    error = refusal(path, ParseLimits(max_pdf_pages=5))
    assert error.code == "TOO_LARGE" and "more than 5 pages" in error.message


def test_blank_pdf_within_bounds_is_still_empty_and_says_how_many_pages(
    write_file: WriteFile,
) -> None:
    error = refusal(write_file("blank.pdf", hostile.pdf_pages(3)))
    assert error.code == "EMPTY" and "any of its 3 pages" in error.message


@pytest.mark.parametrize(
    ("kind", "depth", "code"),
    [
        ("array", 5_000, None),  # pdfminer's object parser keeps its own stack: read fine
        ("dict", 5_000, None),
        ("page-tree", 2_000, "PARSE_ERROR"),  # its page-tree walk recurses: a clean refusal
        ("cycle", 1, None),  # a node listing itself among its kids is walked once
    ],
)
def test_pdf_with_deeply_nested_objects_is_bounded(
    kind: str, depth: int, code: str | None, write_file: WriteFile
) -> None:
    path = write_file(f"{kind}.pdf", hostile.pdf_nested(depth, kind=kind))
    with peak_memory() as peak:
        if code is None:
            (document,) = parse_source(path, max_bytes=100 * MIB).documents
            assert "ninety days" in document.blocks[0].text
        else:
            assert refusal(path).code == code
    assert peak.bytes < 256 * MIB


# --- parse time --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "where"),
    [
        ("slow.pdf", "page 1 of 3"),
        ("slow.docx", "ZIP member 1 of"),
        ("slow.csv", "line 2"),
        ("slow.jsonl", "line 1"),
        ("slow.json", "top-level item 1"),
        ("slow.md", "line 1"),
        ("slow.html", "the HTML parse"),
    ],
)
def test_parse_deadline_is_checked_between_units_of_work(
    name: str, where: str, write_file: WriteFile, tmp_path: Path
) -> None:
    contents: dict[str, bytes] = {
        ".pdf": hostile.pdf_pages(3),
        ".csv": b"a,b\n1,2\n3,4\n",
        ".jsonl": b'{"id": 1, "text": "one"}\n{"id": 2, "text": "two"}\n',
        ".json": b'{"a": 1, "b": 2}',
        ".md": b"# Title\n\nBody.\n",
        ".html": b"<html><body><p>Body.</p></body></html>",
    }
    suffix = Path(name).suffix
    if suffix == ".docx":
        document = docx.Document()
        document.add_paragraph("Body.")
        document.save(str(tmp_path / name))
        path = tmp_path / name
    else:
        path = write_file(name, contents[suffix])
    error = refusal(path, ParseLimits(max_parse_seconds=1e-9))  # already past when it starts
    assert error.code == "PARSE_TIMEOUT", error
    assert f"stopped at {where}" in error.message and "max_parse_seconds" in str(error)


# --- nesting -----------------------------------------------------------------------------------


def test_deeply_nested_json_is_a_parse_error(write_file: WriteFile) -> None:
    error = refusal(write_file("deep.json", hostile.nested_json(100_000)))
    assert error.code == "PARSE_ERROR" and "nested too deeply" in error.message


def test_deeply_nested_html_is_a_parse_error(write_file: WriteFile) -> None:
    error = refusal(write_file("deep.html", hostile.nested_html(5_000)))
    assert error.code == "PARSE_ERROR" and "nested too deeply" in error.message


# --- settings reach the pipeline ------------------------------------------------------------


def test_ingestion_settings_bound_the_pipeline(write_file: WriteFile, tmp_path: Path) -> None:
    path = write_file("six.pdf", hostile.pdf_pages(6))
    settings = load_settings(
        home=tmp_path / "home",
        embedding={"provider": "hashing", "cache": False},
        ingestion={"max_pdf_pages": 5},
    )
    container = Container(settings)
    try:
        report = container.pipeline.ingest([str(path)])
    finally:
        container.close()
    (result,) = report.files
    assert result.status == "failed" and result.error_code == "TOO_LARGE"
    assert "6 pages" in (result.error_message or "")


# --- values that cannot be stored as they are ------------------------------------------------


def test_unstorable_ids_and_metadata_through_the_pipeline(
    write_file: WriteFile, tmp_path: Path
) -> None:
    """A JSONL id with a lone surrogate or a NUL is refused per record (it crashed the whole
    ingest with UnicodeEncodeError before, issue 11); metadata is cleaned; what was stored
    before is kept."""
    settings = load_settings(
        home=tmp_path / "home", embedding={"provider": "hashing", "cache": False}
    )
    container = Container(settings)
    try:
        assert (
            container.pipeline.ingest([str(EXAMPLES / "api-key-rotation.md")], "kb").exit_code == 0
        )
        path = write_file(
            "odd.jsonl",
            b'{"_id": "\\ud800", "text": "one"}\n'
            b'{"_id": "a\\u0000", "text": "two"}\n'
            b'{"_id": "fine", "text": "three", "k\\udc00": "v\\ud800", "n": NaN}\n',
        )
        report = container.pipeline.ingest([str(path)], "kb")
        (result,) = report.files
        assert result.status == "partial" and result.documents == 1, result
        assert len(result.record_errors) == 2
        assert all(e["code"] == "PARSE_ERROR" for e in result.record_errors)
        stored = container.store.get_document("kb", "fine")
        assert stored is not None and dict(stored.metadata) == {"k": "v", "n": "nan"}
        assert len(container.store.documents_by_source("kb")) == 2  # the earlier one is kept
    finally:
        container.close()

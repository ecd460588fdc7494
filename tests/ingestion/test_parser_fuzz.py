"""The parsers fuzzed with hypothesis (issue 11): random bytes, and mutations of a small valid
file, per format (pdf, docx, html, md, csv, json, jsonl, txt). Whatever the bytes, parsing
either gives documents whose every string can be stored (UTF-8 encodable, no NUL) or raises an
``IngestError`` with one of the stable codes; never another exception, and within a bounded
time (``ParseLimits.max_parse_seconds`` plus a margin).

The examples are derandomised (the same bytes on every run) and not shrunk, so the file takes a
bounded time in ``make test``; ``test_parsers_survive_deep_fuzz`` (``slow``) runs more.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from reportlab.pdfgen.canvas import Canvas

from ragkeel.errors import IngestError
from ragkeel.ingestion.parsers import ParseLimits, parse_source, tabular

MAX_BYTES = 1024 * 1024
LIMITS = ParseLimits(max_parse_seconds=5.0)
TIME_BOUND_S = LIMITS.max_parse_seconds + 5.0  # the deadline is checked between units of work
CODES = {
    "UNSUPPORTED_TYPE",
    "READ_ERROR",
    "DECODE_ERROR",
    "PARSE_ERROR",
    "PARSE_TIMEOUT",
    "TOO_LARGE",
    "ENCRYPTED",
    "EMPTY",
}
EXAMPLES = 40  # per format and strategy
DEEP_EXAMPLES = 400


def _pdf() -> bytes:
    out = io.BytesIO()
    canvas = Canvas(out)
    canvas.drawString(72, 720, "Rotate every API key every ninety days.")
    canvas.showPage()
    canvas.save()
    return out.getvalue()


def _docx() -> bytes:
    document = docx.Document()
    document.add_heading("Keys", level=1)
    document.add_paragraph("Rotate every API key every ninety days.")
    document.add_table(rows=2, cols=2).cell(0, 0).text = "cell"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


SEEDS: dict[str, Callable[[], bytes]] = {
    ".pdf": _pdf,
    ".docx": _docx,
    ".html": lambda: (
        b"<html><head><title>Keys</title></head><body><h1>Keys</h1><p>Rotate keys.</p>"
        b"<table><tr><td>a</td><td>b</td></tr></table><ul><li>one</li></ul></body></html>"
    ),
    ".md": lambda: b"# Keys\n\nRotate keys.\n\n## Revoking\n\n- one\n- two\n\n```\ncode\n```\n",
    ".csv": lambda: b'region,q1,q2\nEurope,3180,3402\n"North, America",4210,4655\n',
    ".json": lambda: b'{"title": "Keys", "text": "Rotate keys.", "tags": ["a", 1, null]}',
    ".jsonl": lambda: b'{"_id": "1", "title": "A", "text": "one"}\n{"_id": "2", "text": "two"}\n',
    ".txt": lambda: b"Keys\n\nRotate every API key every ninety days.\n",
}
_SEED_BYTES: dict[str, bytes] = {}


def seed(suffix: str) -> bytes:
    if suffix not in _SEED_BYTES:
        _SEED_BYTES[suffix] = SEEDS[suffix]()
    return _SEED_BYTES[suffix]


# byte values that matter to the formats: NUL, quotes, brackets, markup, separators, high bytes
INTERESTING = st.sampled_from(
    [0, 0x22, 0x2C, 0x3C, 0x3E, 0x5B, 0x5D, 0x7B, 0x7D, 0x0A, 0x0D, 0x5C, 0x80, 0xED, 0xFF]
)
# tokens that parse but cannot be stored or sent as they are: escaped lone surrogates and NULs,
# non-finite numbers (Python's json reads them), entities of control characters, deep nesting
TOKENS = st.sampled_from(
    [
        b"\\ud800",
        b"\\udfff",
        b"\\u0000",
        b"NaN",
        b"Infinity",
        b"1e999",
        b"&#0;",
        b"&#xD800;",
        b"\x00",
        b"[" * 200,
        b"<b>" * 200,
        b"\xed\xa0\x80",
    ]
)


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with a few edits: flipped, replaced, inserted, deleted or duplicated bytes,
    or cut short."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["flip", "set", "insert", "token", "delete", "repeat", "cut"]))
        if edit == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "set":
            data[at] = draw(st.one_of(INTERESTING, st.integers(0, 255)))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif edit == "token":
            data[at:at] = draw(TOKENS)
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif edit == "repeat":
            end = min(len(data), at + draw(st.integers(1, 32)))
            data[at:at] = data[at:end] * draw(st.integers(2, 200))
        else:
            del data[at:]
    return bytes(data)


def _zip_mutated(original: bytes) -> st.SearchStrategy[bytes]:
    """A DOCX whose ``word/document.xml`` is mutated but still well zipped (gets past the ZIP
    layer into the XML)."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        source = zipfile.ZipFile(io.BytesIO(original))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
            for info in source.infolist():
                body = source.read(info)
                if info.filename == "word/document.xml":
                    body = draw(mutated(body))
                target.writestr(info.filename, body)
        return out.getvalue()

    return build()


# any code point, lone surrogates and controls included; some words so a text is not all noise
ANY_CHAR = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None)
TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.sampled_from(["Rotate every API key.", "", " ", "\x00", "\ud800", "a\udfffb"]),
)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), TEXT)
JSON_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=20,
)
RECORD = st.fixed_dictionaries(
    {},
    optional={
        "_id": st.one_of(TEXT, st.integers(), JSON_VALUE),
        "id": st.one_of(TEXT, st.integers()),
        "title": st.one_of(TEXT, JSON_VALUE),
        "text": st.one_of(TEXT, JSON_VALUE),
        "metadata": st.one_of(st.dictionaries(TEXT, SCALAR, max_size=4), JSON_VALUE),
        "score": SCALAR,
    },
)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()  # ASCII: surrogates as \ud800 escapes, NaN as NaN


def structured(suffix: str) -> st.SearchStrategy[bytes]:
    """Well-formed files of the format holding hostile values: lone surrogates, NULs and other
    controls, non-finite numbers, odd keys (the bytes of text formats: UTF-8 with
    ``surrogatepass``, i.e. invalid UTF-8 where a surrogate is)."""
    if suffix == ".jsonl":
        return st.lists(RECORD, min_size=1, max_size=4).map(
            lambda records: b"\n".join(_json(r) for r in records)
        )
    if suffix == ".json":
        return st.one_of(RECORD, JSON_VALUE).map(_json)
    if suffix == ".csv":
        rows = st.lists(st.lists(TEXT, min_size=1, max_size=4), min_size=1, max_size=5)
        return rows.map(
            lambda rs: "\n".join(",".join(json.dumps(c, ensure_ascii=False) for c in r) for r in rs)
        ).map(lambda text: text.encode("utf-8", "surrogatepass"))
    if suffix in (".html", ".md", ".txt"):
        wrap = {
            ".html": "<html><title>{0}</title><body><p>{0}</p></body></html>",
            ".md": "# {0}\n\n{0}\n",
        }
        template = wrap.get(suffix, "{0}\n\n{0}")
        return TEXT.map(lambda t: template.format(t).encode("utf-8", "surrogatepass"))
    return mutated(seed(suffix))


def strategies(suffix: str) -> list[st.SearchStrategy[bytes]]:
    out = [st.binary(min_size=1, max_size=4096), mutated(seed(suffix)), structured(suffix)]
    if suffix == ".docx":
        out.append(_zip_mutated(seed(suffix)))
    return out


def _strings(value: Any) -> list[str]:
    """Every string inside ``value`` (a parsed document's parts)."""
    stack, out = [value], []
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return out


def check_parse(path: Path, data: bytes) -> str:
    """Parse ``data`` as ``path``; the outcome's name ("ok" or the error code)."""
    path.write_bytes(data)
    started = time.monotonic()
    try:
        outcome = parse_source(path, max_bytes=MAX_BYTES, limits=LIMITS)
    except IngestError as exc:
        result = exc.code
        assert exc.code in CODES, (exc.code, exc)
        assert isinstance(exc.message, str) and exc.message
    else:
        result = "ok"
        for document in outcome.documents:
            parts = [
                document.title,
                document.external_id,
                dict(document.metadata),
                [(b.text, b.heading_path) for b in document.blocks],
            ]
            for text in _strings(parts):
                text.encode("utf-8")  # storable: no lone surrogate
                assert "\x00" not in text, (path.suffix, text[:80])
            json.dumps(dict(document.metadata), allow_nan=False)  # sendable as JSON
        for _, error in outcome.record_errors:
            assert error.code in CODES, error
    elapsed = time.monotonic() - started
    assert elapsed < TIME_BOUND_S, (path.suffix, elapsed, len(data))
    return result


FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _fuzz(suffix: str, tmp_path: Path, examples: int) -> None:
    path = tmp_path / f"fuzzed{suffix}"
    outcomes: Counter[str] = Counter()
    for strategy in strategies(suffix):

        @given(data=strategy)
        @settings(FAST, max_examples=examples)
        def one(data: bytes) -> None:
            outcomes[check_parse(path, data)] += 1

        one()
    print(f"{suffix}: {sum(outcomes.values())} cases, {dict(outcomes)}")  # docs/benchmarks.md


@pytest.mark.parametrize("suffix", sorted(SEEDS))
def test_parsers_survive_fuzzed_bytes(suffix: str, tmp_path: Path) -> None:
    assert check_parse(tmp_path / f"seed{suffix}", seed(suffix)) == "ok"  # the seed is valid
    _fuzz(suffix, tmp_path, EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", sorted(SEEDS))
def test_parsers_survive_deep_fuzz(suffix: str, tmp_path: Path) -> None:
    _fuzz(suffix, tmp_path, DEEP_EXAMPLES)


@given(text=st.text(st.sampled_from('ab,"\r\n\x0c\u2028 ')))
@settings(FAST, max_examples=300)
def test_csv_lines_split_as_stringio_does(text: str) -> None:
    """The CSV parser's line splitter (no StringIO copy of a huge file) yields what
    ``StringIO(text, newline="")`` does, so the csv module parses the same rows."""
    assert list(tabular._lines(text)) == list(io.StringIO(text, newline=""))

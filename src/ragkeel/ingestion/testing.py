"""Hostile files, built in memory in milliseconds, for the tests and ``bench/hostile_files.py``
(like ``ragkeel.testing``, shipped so that both use the same files; nothing here is on the
ingestion path).

- ``docx_bomb``: a well-formed DOCX whose ``word/document.xml`` inflates to ``inflated_bytes``
  (spaces inside the body, so the XML stays valid), at deflate's ~1:1030 ratio: 1 GiB from a
  ~1 MB file. The compressed body is one full-flushed deflate block of 1 MiB of spaces repeated,
  so nothing is ever inflated or compressed at full size to build it. ``members`` > 1 adds
  more such members (unreferenced), to reach a larger file without ZIP64.
- ``docx_lying_header``: the same body, with local and central headers declaring
  ``declared_bytes`` (optionally with the CRC of that many first bytes): a reader that trusted
  the header would allocate little and inflate much.
- ``pdf_pages``: a PDF of ``pages`` blank pages (a grey box each, no text), ~250 bytes a page;
  ``declared_pages`` writes another number in the page tree's /Count.
- ``nested_json`` / ``nested_html``: ``depth`` levels of nesting.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ZipMember",
    "docx_bomb",
    "docx_lying_header",
    "nested_html",
    "nested_json",
    "pdf_pages",
    "zip_archive",
]

MIB = 1024 * 1024
_FILL = b" "
_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")
_DOS_DATE = (2026 - 1980) << 9 | 12 << 5 | 6  # 2026-12-06, 00:00
_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" '
    b'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
_BODY_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    b"<w:body><w:p><w:r><w:t>A harmless looking first paragraph.</w:t></w:r></w:p>"
)
_BODY_TAIL = b"</w:body></w:document>"


@dataclass(frozen=True, slots=True)
class ZipMember:
    """One member as it goes into the archive: raw (already compressed) ``data``, with the
    ``crc`` and inflated ``size`` the headers declare (they may lie)."""

    name: str
    data: bytes
    crc: int
    size: int
    method: int = 8  # 8 deflate, 0 stored


def stored(name: str, data: bytes) -> ZipMember:
    return ZipMember(name, data, zlib.crc32(data), len(data), method=0)


def zip_archive(members: Sequence[ZipMember]) -> bytes:
    """A plain (non-ZIP64) archive of ``members``, headers written as given."""
    out = bytearray()
    central = bytearray()
    for m in members:
        name = m.name.encode()
        offset = len(out)
        out += _LOCAL.pack(
            b"PK\x03\x04", 20, 0, m.method, 0, _DOS_DATE, m.crc, len(m.data), m.size, len(name), 0
        )
        out += name + m.data
        central += _CENTRAL.pack(
            b"PK\x01\x02", 20, 20, 0, m.method, 0, _DOS_DATE, m.crc, len(m.data), m.size,
            len(name), 0, 0, 0, 0, 0, offset,
        )  # fmt: skip
        central += name
    start = len(out)
    out += central
    out += _END.pack(b"PK\x05\x06", 0, 0, len(members), len(members), len(central), start, 0)
    return bytes(out)


def docx_bomb(inflated_bytes: int = 1024 * MIB, *, members: int = 1) -> bytes:
    """A DOCX whose document (and ``members - 1`` extra parts) each inflate to about
    ``inflated_bytes`` (< 4 GiB); the headers tell the truth."""
    body = _spaces_member("word/document.xml", inflated_bytes)
    extra = [
        ZipMember(f"word/padding{n}.xml", body.data, body.crc, body.size) for n in range(1, members)
    ]
    return zip_archive(_docx_frame(body, extra))


def docx_lying_header(
    inflated_bytes: int = 1024 * MIB, declared_bytes: int = 20_000, *, prefix_crc: bool = False
) -> bytes:
    """A DOCX whose document inflates to ``inflated_bytes`` but whose headers declare
    ``declared_bytes`` (and a compression ratio that looks ordinary). ``prefix_crc``: the
    declared CRC is that of the first ``declared_bytes`` bytes, so a reader that stops at the
    declared size finds nothing wrong."""
    body = _spaces_member("word/document.xml", inflated_bytes)
    crc = body.crc
    if prefix_crc:
        prefix = (_BODY_HEAD + _FILL * declared_bytes)[:declared_bytes]
        crc = zlib.crc32(prefix)
    lying = ZipMember(body.name, body.data, crc, declared_bytes)
    return zip_archive(_docx_frame(lying, []))


def _docx_frame(document: ZipMember, extra: list[ZipMember]) -> list[ZipMember]:
    return [
        stored("[Content_Types].xml", _CONTENT_TYPES),
        stored("_rels/.rels", _RELS),
        document,
        *extra,
    ]


def _spaces_member(name: str, inflated_bytes: int) -> ZipMember:
    """``_BODY_HEAD`` + spaces + ``_BODY_TAIL`` of ``inflated_bytes`` in all, deflated by
    repeating one full-flushed block (a full flush resets the compressor's history, so the
    same input compresses to the same bytes every time)."""
    fill = inflated_bytes - len(_BODY_HEAD) - len(_BODY_TAIL)
    if not 0 <= fill < 1 << 32:
        raise ValueError("inflated_bytes must leave room for the XML and stay below 4 GiB")
    blocks, rest = divmod(fill, MIB)
    block_in = _FILL * MIB
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(_BODY_HEAD) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(block_in) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = (
        compressor.compress(_FILL * rest)
        + compressor.flush(zlib.Z_FULL_FLUSH)
        + compressor.compress(_BODY_TAIL)
        + compressor.flush()
    )
    crc = zlib.crc32(_BODY_HEAD)
    for _ in range(blocks):
        crc = zlib.crc32(block_in, crc)
    crc = zlib.crc32(_BODY_TAIL, zlib.crc32(_FILL * rest, crc))
    data = head + (block * blocks if blocks else b"") + tail
    if not blocks:  # the block was compressed but is not part of the stream: redo without it
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = compressor.compress(_BODY_HEAD + _FILL * rest + _BODY_TAIL) + compressor.flush()
    return ZipMember(name, data, crc, inflated_bytes)


def pdf_pages(pages: int, *, declared_pages: int | None = None) -> bytes:
    """``pages`` blank A4-ish pages (a grey box each, no text) in a classic-xref PDF."""
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, filled in below
    ]
    kids = []
    for n in range(pages):
        content = f"0.5 g {72 + n % 50} 200 300 400 re f".encode()
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
        content_ref = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R >>"
            % content_ref
        )
        kids.append(b"%d 0 R" % len(objects))
    count = pages if declared_pages is None else declared_pages
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), count)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def nested_json(depth: int) -> bytes:
    return b'{"a": ' * depth + b'"deep"' + b"}" * depth


def nested_html(depth: int) -> bytes:
    return (
        b"<html><head><title>deep</title></head><body>"
        + b"<div>" * depth
        + b"deep text"
        + b"</div>" * depth
        + b"</body></html>"
    )


def _pdf_file(objects: Sequence[bytes]) -> bytes:
    """A classic-xref PDF of ``objects`` (object 1 is the catalog)."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


_PDF_TEXT = b"BT /F1 12 Tf 72 720 Td (Rotate every API key every ninety days.) Tj ET"
_PDF_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def pdf_nested(depth: int, *, kind: Literal["array", "dict", "page-tree", "cycle"]) -> bytes:
    """A one-page PDF with text, made hostile by nesting ``depth`` deep: ``array`` / ``dict``
    an entry of the page (``[[[...]]]`` / ``<< /A << /A ... >> >>``), ``page-tree`` a chain
    of ``depth`` /Pages nodes above the page, ``cycle`` a page tree whose node lists itself
    among its kids."""
    nested = {
        "array": b"[" * depth + b"1" + b"]" * depth,
        "dict": b"<< /A " * depth + b"1" + b" >>" * depth,
    }.get(kind, b"1")
    page = b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents 3 0 R "
    page += b"/Resources << /Font << /F1 4 0 R >> >> /Deep " + nested + b" >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the root of the page tree, below
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(_PDF_TEXT), _PDF_TEXT),
        _PDF_FONT,
        b"",  # the page, below
    ]
    if kind == "page-tree":
        for level in range(depth):  # objects 6..: /Pages nodes, each the parent of the next
            parent = 2 if level == 0 else 5 + level
            kid = 6 + level + 1 if level < depth - 1 else 5
            objects.append(
                b"<< /Type /Pages /Parent %d 0 R /Kids [%d 0 R] /Count 1 >>" % (parent, kid)
            )
        objects[1] = b"<< /Type /Pages /Kids [6 0 R] /Count 1 >>"
        objects[4] = page % (5 + depth)
    elif kind == "cycle":
        objects[1] = b"<< /Type /Pages /Kids [2 0 R 5 0 R] /Count 2 >>"
        objects[4] = page % 2
    else:
        objects[1] = b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>"
        objects[4] = page % 2
    return _pdf_file(objects)

"""ZIP-based formats (DOCX today; XLSX, PPTX, ODT or EPUB would come through here too): the
archive is checked against ``ParseLimits`` before the format library reads any member.

``check_zip(data, source, kind=..., hint=...)``, in order, each step before the next reads more:

1. the end-of-central-directory record: at most ``max_archive_members`` entries, and a central
   directory no larger than those entries can need (so ``zipfile`` never builds a huge list);
2. the central directory (``ZipFile.infolist()``, sizes as *declared*): at most
   ``max_archive_members`` members, declared inflated sizes adding up to at most
   ``max_inflated_bytes``, and no member declaring more than 1 MiB that inflates more than
   ``max_compression_ratio`` times its compressed size (a "zip bomb");
3. every member streamed once in 64 KiB reads, with a hard cap at its declared size and at the
   archive's remaining budget, and its CRC checked: a header that lies about a size is a
   ``PARSE_ERROR`` here, so the library that reads the members afterwards (and is bounded by
   the same declared sizes) cannot inflate more than step 2 allowed.

Over a bound: ``TooLargeError`` (``TOO_LARGE``) naming the bound and its setting; not a ZIP or
a damaged member: ``ParseError``. Time: ``Source.check_time`` between members and reads. Memory:
the archive's bytes (already bounded by ``max_file_bytes``) plus one read buffer.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from ragkeel.errors import ParseError, TooLargeError
from ragkeel.ingestion.parsers.base import Source, human_size

__all__ = ["RATIO_GRACE_BYTES", "check_zip"]

RATIO_GRACE_BYTES = 1024 * 1024  # smaller members may compress very well (repetitive XML)
_READ_BYTES = 64 * 1024
_MAX_ENTRY_BYTES = 1024  # central-directory bytes allowed per member: 46 + name + extra + comment
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_EOCD_SIG = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_MAX_COMMENT = 0xFFFF


def check_zip(data: bytes, source: Source, *, kind: str, hint: str) -> None:
    """Refuse ``data`` (the whole file) unless it is a ZIP archive within ``source.limits``."""
    limits = source.limits
    entries, directory_bytes = _directory_extent(data, source.name, kind, hint)
    if entries > limits.max_archive_members:
        raise _too_many(source.name, entries, limits.max_archive_members)
    if directory_bytes > max(entries, 1) * _MAX_ENTRY_BYTES:
        raise ParseError(
            f"{source.name}: not a valid {kind} file (its ZIP directory declares {entries} "
            f"members in {human_size(directory_bytes)})",
            hint=hint,
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise _invalid(source.name, kind, hint, exc) from exc
    with archive:
        members = archive.infolist()
        _check_directory(members, source)
        _stream_members(archive, members, source, kind, hint)


def _directory_extent(data: bytes, name: str, kind: str, hint: str) -> tuple[int, int]:
    """(entries, central-directory bytes) from the end records, without parsing the directory."""
    start = max(0, len(data) - _EOCD.size - _MAX_COMMENT)
    at = data.rfind(_EOCD_SIG, start)
    if at < 0 or len(data) - at < _EOCD.size:
        raise ParseError(f"{name}: not a valid {kind} file (not a ZIP archive)", hint=hint)
    _, _, _, _, entries, size, offset, _ = _EOCD.unpack_from(data, at)
    if entries != 0xFFFF and size != 0xFFFFFFFF and offset != 0xFFFFFFFF:
        return entries, size
    locator = at - _ZIP64_LOCATOR.size
    if locator < 0 or data[locator : locator + 4] != b"PK\x06\x07":
        return entries, size
    _, _, record, _ = _ZIP64_LOCATOR.unpack_from(data, locator)
    if record + _ZIP64_EOCD.size > len(data) or data[record : record + 4] != b"PK\x06\x06":
        raise ParseError(f"{name}: not a valid {kind} file (bad ZIP64 directory)", hint=hint)
    fields = _ZIP64_EOCD.unpack_from(data, record)
    return int(fields[7]), int(fields[8])


def _check_directory(members: list[zipfile.ZipInfo], source: Source) -> None:
    limits = source.limits
    if len(members) > limits.max_archive_members:
        raise _too_many(source.name, len(members), limits.max_archive_members)
    declared = sum(info.file_size for info in members)
    if declared > limits.max_inflated_bytes:
        raise TooLargeError(
            f"{source.name}: its {len(members)} ZIP members inflate to {human_size(declared)}, "
            f"above the {human_size(limits.max_inflated_bytes)} limit",
            hint=_raise_hint("max_inflated_bytes"),
        )
    for info in members:
        if info.file_size < RATIO_GRACE_BYTES:
            continue
        ratio = info.file_size / info.compress_size if info.compress_size else float("inf")
        if ratio > limits.max_compression_ratio:
            raise TooLargeError(
                f"{source.name}: ZIP member {info.filename!r} inflates {ratio:.0f} times "
                f"({human_size(info.compress_size)} to {human_size(info.file_size)}), above "
                f"the {limits.max_compression_ratio:g}x limit (a decompression bomb?)",
                hint=_raise_hint("max_compression_ratio"),
            )


def _stream_members(
    archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], source: Source, kind: str, hint: str
) -> None:
    budget = source.limits.max_inflated_bytes
    for number, info in enumerate(members, start=1):
        source.check_time(f"ZIP member {number} of {len(members)}")
        if info.is_dir():
            continue
        cap = min(info.file_size, budget)
        got = 0
        try:
            with archive.open(info) as member:
                while chunk := member.read(min(_READ_BYTES, cap - got + 1)):
                    got += len(chunk)
                    if got > cap:
                        raise _lying(source.name, info, kind, hint)
                    source.check_time(f"ZIP member {number} of {len(members)}")
        except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
            raise _invalid(source.name, kind, hint, exc, member=info.filename) from exc
        if got != info.file_size:
            raise _lying(source.name, info, kind, hint)
        budget -= got


def _lying(name: str, info: zipfile.ZipInfo, kind: str, hint: str) -> ParseError:
    return ParseError(
        f"{name}: not a valid {kind} file (ZIP member {info.filename!r} does not inflate to "
        f"the {info.file_size} bytes its header declares)",
        hint=hint,
    )


def _invalid(
    name: str, kind: str, hint: str, exc: BaseException, *, member: str | None = None
) -> ParseError:
    where = f"ZIP member {member!r}: " if member else ""
    return ParseError(
        f"{name}: not a valid {kind} file ({where}{type(exc).__name__}: {exc})", hint=hint
    )


def _too_many(name: str, count: int, limit: int) -> TooLargeError:
    return TooLargeError(
        f"{name}: the ZIP archive has {count} members, above the {limit} limit",
        hint=_raise_hint("max_archive_members"),
    )


def _raise_hint(setting: str) -> str:
    env = f"RAGKEEL_INGESTION__{setting.upper()}"
    return f"if the file is genuine, raise ingestion.{setting} ({env})"

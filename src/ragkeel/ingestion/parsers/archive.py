"""ZIP-based formats (DOCX today; XLSX, PPTX, ODT or EPUB would come through here too): the
archive is checked against ``ParseLimits`` before the format library reads any member, and the
library then reads a verified copy, never the archive it was sent.

``checked_zip(data, source, kind=..., hint=...) -> bytes``, in order, each step before the next
reads more:

1. the end-of-central-directory record: at most ``max_archive_members`` entries, and a central
   directory no larger than those entries can need (so ``zipfile`` never builds a huge list);
2. the central directory (``ZipFile.infolist()``, sizes as *declared*): at most
   ``max_archive_members`` members, no two with the same name, declared inflated sizes adding
   up to at most ``max_inflated_bytes``, and no member declaring more than 1 MiB that inflates
   more than ``max_compression_ratio`` times its compressed size (a "zip bomb");
3. every member streamed once in 64 KiB reads, with a hard cap at its declared size and at the
   archive's remaining budget, its CRC checked, and copied *stored* (uncompressed) into a new
   archive, which is what is returned.

Why the copy: a header may lie about a member's size. ``zipfile`` stops *returning* data at the
declared size, but ``ZipFile.read()`` (what python-docx calls) first inflates the whole deflate
stream in one call, so a member declaring 20 kB (with the CRC of its first 20 kB) can still
take gigabytes. Members copied stored can only be read as what step 3 verified.

Over a bound: ``TooLargeError`` (``TOO_LARGE``) naming the bound and its setting; not a ZIP, a
damaged member, or a size that does not match: ``ParseError``. Time: ``Source.check_time``
between members and reads. Memory: the file's bytes (bounded by ``max_file_bytes``), the
verified copy (bounded by ``max_inflated_bytes``), and one read buffer.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from ragkeel.errors import ParseError, TooLargeError
from ragkeel.ingestion.parsers.base import Source, human_size

__all__ = ["RATIO_GRACE_BYTES", "checked_zip"]

RATIO_GRACE_BYTES = 1024 * 1024  # smaller members may compress very well (repetitive XML)
_READ_BYTES = 64 * 1024
_MAX_ENTRY_BYTES = 1024  # central-directory bytes allowed per member: 46 + name + extra + comment
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_EOCD_SIG = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_MAX_COMMENT = 0xFFFF


def checked_zip(data: bytes, source: Source, *, kind: str, hint: str) -> bytes:
    """A verified, stored copy of the ZIP archive ``data`` (the whole file); refuses it unless
    it is within ``source.limits``."""
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
        _check_directory(members, source, kind, hint)
        return _verified_copy(archive, members, source, kind, hint)


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


def _check_directory(members: list[zipfile.ZipInfo], source: Source, kind: str, hint: str) -> None:
    limits = source.limits
    if len(members) > limits.max_archive_members:
        raise _too_many(source.name, len(members), limits.max_archive_members)
    if len({info.filename for info in members}) < len(members):
        raise ParseError(
            f"{source.name}: not a valid {kind} file (two ZIP members have the same name)",
            hint=hint,
        )
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


def _verified_copy(
    archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], source: Source, kind: str, hint: str
) -> bytes:
    budget = source.limits.max_inflated_bytes
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as copy:
        for number, info in enumerate(members, start=1):
            where = f"ZIP member {number} of {len(members)}"
            source.check_time(where)
            if info.is_dir():
                continue
            cap = min(info.file_size, budget)
            target = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            target.file_size = info.file_size  # lets zipfile choose ZIP64 up front if needed
            got = 0
            try:
                with archive.open(info) as member, copy.open(target, "w") as out:
                    while chunk := member.read(min(_READ_BYTES, cap - got + 1)):
                        got += len(chunk)
                        if got > cap:
                            raise _lying(source.name, info, kind, hint)
                        out.write(chunk)
                        source.check_time(where)
            except (
                zipfile.BadZipFile,
                EOFError,
                zlib.error,
                NotImplementedError,
                RuntimeError,
            ) as exc:
                raise _invalid(source.name, kind, hint, exc, member=info.filename) from exc
            if got != info.file_size:
                raise _lying(source.name, info, kind, hint)
            budget -= got
    return buffer.getvalue()


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

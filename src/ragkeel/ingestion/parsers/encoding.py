"""Bytes -> text for the text-like formats (txt, md, csv, json, html fallback).

Order: byte-order mark, then strict UTF-8 (the fast path), then charset-normalizer. Among
charset-normalizer's near-best candidates Windows-1252 is preferred when it fits, because
charset-normalizer alone often labels short Western European text as cp1250/cp775, and text whose
only non-ASCII bytes are curly quotes, dashes or "€" as a DOS code page. Latin-1 is a subset of
cp1252 for every printable character, so "café" in Latin-1 decodes correctly.
Binary content (NUL bytes, mostly control characters, no credible encoding) is a ``DecodeError``.
"""

from __future__ import annotations

import codecs

import charset_normalizer

from ragkeel.errors import DecodeError

__all__ = ["decode_bytes", "looks_binary"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SNIFF_BYTES = 8192
_MAX_CONTROL_RATIO = 0.05
_CHAOS_SLACK = 0.05
_WESTERN = "cp1252"
_DOS_OR_MAC = ("cp4", "cp7", "cp8", "mac_", "hp_roman")  # legacy code pages rarely seen today
_WESTERN_MARKS = frozenset("“”‘’‚„–—…€•™†‡‰‹›ŒœŠšŽžŸ°±²³µ·«»¿¡©®§¶£¥¢¤¬ªº¼½¾ˆ˜\u00a0\u00ad")
_MAX_ACCENTED_SHARE = 0.3


def decode_bytes(data: bytes, name: str) -> str:
    """Decode a text file's bytes, or raise ``DecodeError`` naming ``name`` and what to do."""
    text = _decode(data, name)
    if looks_binary(text):
        raise _binary_error(name)
    return text


def looks_binary(text: str) -> bool:
    """True when decoded text is mostly control characters (a binary file under a text name)."""
    sample = text[:_SNIFF_BYTES]
    if not sample:
        return False
    controls = sum(1 for ch in sample if ch < " " and ch not in "\t\n\r\f")
    return controls / len(sample) > _MAX_CONTROL_RATIO


def _decode(data: bytes, name: str) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DecodeError(
                    f"{name}: starts with a {encoding} byte-order mark but is not valid {encoding}",
                    hint="re-save the file as UTF-8",
                ) from exc
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise _binary_error(name)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    guessed = _guess_encoding(data)
    if guessed is None:
        raise _binary_error(name)
    return data.decode(guessed, errors="replace")


def _guess_encoding(data: bytes) -> str | None:
    matches = charset_normalizer.from_bytes(data)
    if not len(matches):
        return None
    best_chaos = min(match.chaos for match in matches)
    if _decodes(data, _WESTERN) and any(
        match.chaos <= best_chaos + _CHAOS_SLACK and _WESTERN in match.could_be_from_charset
        for match in matches
    ):
        return _WESTERN
    best = matches.best()
    if best is None:
        return None
    if best.encoding.startswith(_DOS_OR_MAC) and _plausibly_western(data):
        return _WESTERN  # curly quotes/dashes/€ alone look like DOS letters to the detector
    return str(best.encoding)


def _plausibly_western(data: bytes) -> bool:
    """cp1252 reading is all ASCII plus Latin-1 letters/typographic marks, mostly ASCII letters."""
    try:
        text = data.decode(_WESTERN)
    except UnicodeDecodeError:
        return False
    extra = [ch for ch in text if ord(ch) > 0x7F]
    if not all(
        ch in _WESTERN_MARKS or ("\u00c0" <= ch <= "\u00ff" and ch not in "×÷") for ch in extra
    ):
        return False
    letters = sum(1 for ch in text if ch.isalpha())
    return sum(1 for ch in extra if ch.isalpha()) <= _MAX_ACCENTED_SHARE * letters


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _binary_error(name: str) -> DecodeError:
    return DecodeError(
        f"{name}: the content looks binary, not text (no credible character encoding found)",
        hint="check that the file really is text, or give it the suffix of its actual format",
    )

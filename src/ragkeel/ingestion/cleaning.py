"""Text normalisation applied by every parser to every block (pure, idempotent).

``clean_text`` keeps content and only repairs what extraction breaks:

* Unicode NFC (not NFKC: compatibility forms such as "²" or "½" are content and stay);
* typographic ligatures ("ﬁ" -> "fi") from an explicit small table;
* soft hyphens and invisible zero-width characters (ZWSP, word joiner, BOM) removed; the
  zero-width (non-)joiners are kept because they change meaning in Persian/Indic scripts and emoji;
* no-break and other odd spaces become plain spaces; line/paragraph separators become newlines;
* control characters other than ``\\n`` and ``\\t`` (and lone surrogates) removed;
* a word hyphenated across a line break inside a paragraph is re-joined ("inter-\\nnational"
  -> "international") only when both sides are lowercase letters;
* runs of spaces collapsed (leading indentation is kept so code stays readable), trailing spaces
  stripped per line, three or more newlines collapsed to two, outer whitespace stripped.

``clean_text(clean_text(x)) == clean_text(x)`` for every string (property-tested).

``storable(text)`` only removes what cannot be stored or sent (control characters other than
``\\n`` and ``\\t``, lone surrogates) and changes nothing else: for metadata values and keys,
which are data, not prose.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean_text", "storable"]

_LIGATURES = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
}
_INVISIBLE = "\u00ad\u200b\u2060\ufeff"  # soft hyphen, zero-width space, word joiner, BOM
_ODD_SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
_NEWLINES = {"\r": "\n", "\v": "\n", "\f": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n\n"}


def _build_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    controls = [*range(0x00, 0x20), *range(0x7F, 0xA0)]
    for code in controls:
        if chr(code) not in "\n\t":
            table[code] = None
    for code in range(0xD800, 0xE000):  # lone surrogates cannot be encoded as UTF-8 downstream
        table[code] = None
    for char in _INVISIBLE:
        table[ord(char)] = None
    for char in _ODD_SPACES:
        table[ord(char)] = " "
    for char, replacement in (_NEWLINES | _LIGATURES).items():
        table[ord(char)] = replacement
    return table


_TABLE = _build_table()
_UNSTORABLE: dict[int, None] = {
    code: None
    for code in (*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0xD800, 0xE000))
    if chr(code) not in "\n\t"
}
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
_LINE_END_HYPHEN = re.compile(r"-\n[ \t]*")
_SPACE_RUN = re.compile(r"(?<=\S) {2,}")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Return ``text`` normalised for indexing (see the module docstring for the rules)."""
    text = text.replace("\r\n", "\n")
    text = unicodedata.normalize("NFC", text)
    text = text.translate(_TABLE)
    text = unicodedata.normalize("NFC", text)  # removed characters may expose composable pairs
    text = _TRAILING_SPACE.sub("", text)
    text = _LINE_END_HYPHEN.sub(_join_hyphenated, text)
    text = _SPACE_RUN.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def storable(text: str) -> str:
    """``text`` without control characters (but ``\\n``, ``\\t``) and lone surrogates."""
    return text.translate(_UNSTORABLE)


def _join_hyphenated(match: re.Match[str]) -> str:
    source, start, end = match.string, match.start(), match.end()
    before = source[start - 1] if start > 0 else ""
    after = source[end] if end < len(source) else ""
    if before.isalpha() and before.islower() and after.isalpha() and after.islower():
        return ""
    return match.group(0)

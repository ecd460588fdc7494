"""Markdown (.md, .markdown): a small line-based reader for the structure retrieval needs.

Recognised: YAML front matter (``key: value`` strings -> metadata), ATX and setext headings
(-> ``heading`` blocks and ``heading_path``), fenced code (-> ``code``), bullet/ordered lists
(-> ``list``), GFM pipe tables (-> ``table``, rows as ``cell | cell``), block quotes and paragraphs.
Inline markup is reduced to its text (links keep their label, images their alt text).
Indented code blocks are read as paragraphs. Title: first H1, else front matter ``title``, else
the file stem.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ragkeel.ingestion.parsers.base import (
    HeadingTrail,
    ParseOutcome,
    Source,
    build_document,
    shorten,
)
from ragkeel.ingestion.parsers.encoding import decode_bytes
from ragkeel.types import Block, BlockKind, ParsedDocument

__all__ = ["parse", "parse_markdown"]

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^ {0,3}(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)")
_THEMATIC = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_QUOTE = re.compile(r"^ {0,3}> ?")
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S+")
_FRONT_KEY = re.compile(r"^([A-Za-z0-9_][\w.-]*)[ \t]*:[ \t]*(.*)$")
_INLINE = (
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # image -> alt text
    (re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\[[^\]]*\])"), r"\1"),  # link -> label
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # strong emphasis
    (re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"), ""),  # inline HTML tags
)
# inline code is literal: its text is set aside before the rules above run (so `<key-id>` is not
# taken for an HTML tag, nor `**x**` for emphasis) and put back without its backticks
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_HELD = re.compile("\ue000(\\d+)\ue001")  # a held code span's place (private-use characters)


def parse(source: Source) -> ParseOutcome:
    text = decode_bytes(source.read_bytes(), source.name)
    document = parse_markdown(
        text, name=source.name, stem=source.path.stem, check_time=source.check_time
    )
    return ParseOutcome([document])


def parse_markdown(
    text: str, *, name: str, stem: str, check_time: Callable[[str], None] | None = None
) -> ParsedDocument:
    """``check_time(where)`` is called before each line (``Source.check_time``: the deadline)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    metadata, start = _front_matter(lines)
    reader = _Reader(lines, start, check_time or (lambda _where: None))
    reader.run()
    h1 = next((b.text for b in reader.blocks if b.kind == "heading" and b.level == 1), None)
    title = h1 or str(metadata.get("title", "")) or stem
    return build_document(name, shorten(title), reader.blocks, metadata=metadata)


class _Reader:
    def __init__(self, lines: list[str], start: int, check_time: Callable[[str], None]) -> None:
        self.check_time = check_time
        self.lines = lines
        self.i = start
        self.blocks: list[Block] = []
        self.trail = HeadingTrail()
        self.paragraph: list[str] = []

    def run(self) -> None:
        while self.i < len(self.lines):
            self.check_time(f"line {self.i + 1}")
            self._step(self.lines[self.i])
        self._flush()

    def _step(self, line: str) -> None:
        heading = _ATX.match(line)
        if not line.strip():
            self._flush()
        elif _FENCE.match(line):
            self._flush()
            self._fence()
            return
        elif heading:
            self._flush()
            self._heading(len(heading.group(1)), heading.group(2) or "")
        elif self.paragraph and _SETEXT.match(line):
            level = 1 if line.strip().startswith("=") else 2
            text, self.paragraph = " ".join(self.paragraph), []
            self._heading(level, text)
        elif _THEMATIC.match(line) or _REF_DEF.match(line):
            self._flush()
        elif "|" in line and self._is_table_delimiter(self.i + 1):
            self._flush()
            self._table()
            return
        elif _LIST_ITEM.match(line):
            self._flush()
            self._list()
            return
        else:
            self.paragraph.append(_QUOTE.sub("", line, count=1))
        self.i += 1

    def _emit(self, text: str, kind: BlockKind, level: int = 0) -> None:
        self.blocks.append(Block(text=text, kind=kind, heading_path=self.trail.path, level=level))

    def _flush(self) -> None:
        if self.paragraph:
            self._emit(_inline("\n".join(self.paragraph)), "paragraph")
            self.paragraph = []

    def _heading(self, level: int, text: str) -> None:
        text = _inline(text).strip()
        if text:
            self.trail.enter(level, text)
            self._emit(text, "heading", level)

    def _fence(self) -> None:
        opening = self.lines[self.i].lstrip()
        marker = opening[0] * (len(opening) - len(opening.lstrip(opening[0])))
        body: list[str] = []
        self.i += 1
        while self.i < len(self.lines):
            line = self.lines[self.i]
            self.i += 1
            if line.strip().startswith(marker) and not line.strip().strip(marker[0]):
                break
            body.append(line)
        self._emit("\n".join(body), "code")

    def _is_table_delimiter(self, index: int) -> bool:
        if index >= len(self.lines):
            return False
        line = self.lines[index].strip()
        return "-" in line and ("|" in line) and not line.translate(_DELIM_CHARS).strip()

    def _table(self) -> None:
        rows = [_row(self.lines[self.i])]
        self.i += 2  # header and delimiter row
        while self.i < len(self.lines) and "|" in self.lines[self.i] and self.lines[self.i].strip():
            rows.append(_row(self.lines[self.i]))
            self.i += 1
        self._emit("\n".join(" | ".join(cells) for cells in rows if any(cells)), "table")

    def _list(self) -> None:
        items: list[str] = []
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if not line.strip():
                following = self._next_nonblank()
                if following is None or not (
                    _LIST_ITEM.match(following) or following.startswith(("  ", "\t"))
                ):
                    break
            elif (
                items
                and not line.startswith((" ", "\t"))
                and not _LIST_ITEM.match(line)
                and (_FENCE.match(line) or _ATX.match(line) or _THEMATIC.match(line))
            ):
                break
            if line.strip():
                items.append(line.rstrip())
            self.i += 1
        self._emit(_inline("\n".join(items)), "list")

    def _next_nonblank(self) -> str | None:
        for line in self.lines[self.i + 1 :]:
            if line.strip():
                return line
        return None


_DELIM_CHARS = str.maketrans("", "", "|:-")


def _row(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    cells = re.split(r"(?<!\\)\|", line)
    return [_inline(cell.replace("\\|", "|").strip()) for cell in cells]


def _inline(text: str) -> str:
    held: list[str] = []
    if "`" in text and "\ue000" not in text:

        def hold(match: re.Match[str]) -> str:
            held.append(match.group(1))
            return f"\ue000{len(held) - 1}\ue001"

        text = _CODE_SPAN.sub(hold, text)
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    if held:
        text = _HELD.sub(lambda m: held[int(m.group(1))], text)
    return text


def _front_matter(lines: list[str]) -> tuple[dict[str, str], int]:
    """Simple ``key: value`` pairs of a leading ``---`` block, and the first line after it."""
    if not lines or lines[0].strip() != "---":
        return {}, 0
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        return {}, 0
    metadata: dict[str, str] = {}
    for line in lines[1:end]:
        match = _FRONT_KEY.match(line)
        if not match:
            continue
        value = match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if value and value[0] not in "[{|>&*!#":
            metadata[match.group(1)] = value
    return metadata, end + 1

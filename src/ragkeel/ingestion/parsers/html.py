"""HTML (.html, .htm) with BeautifulSoup + lxml: boilerplate out, structure kept.

Removed before reading: script/style/noscript/nav/aside/form/svg/iframe/template, page-level
header/footer (as in ARIA, a header/footer inside article/main/section is that section's own, e.g.
an article title, and is kept), elements with role navigation/banner/contentinfo,
``aria-hidden="true"`` or ``hidden``.
The content root is ``<main>``, else a single ``<article>``, else ``<body>``. h1-h6 become
headings (with ``heading_path``), lists one ``list`` block each, ``<pre>`` a ``code`` block,
tables one ``table`` block with ``cell | cell`` rows; other text is grouped into paragraphs at
block-level element boundaries. Title: ``<title>``, else the first h1, else the file stem.
Encoding: byte-order mark, then strict UTF-8, then ``<meta charset>``, then charset-normalizer.
"""

from __future__ import annotations

import codecs
import re
import warnings

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning
from bs4.element import Comment, NavigableString, PageElement, Tag

from ragkeel.errors import ParseError
from ragkeel.ingestion.parsers.base import (
    HeadingTrail,
    ParseOutcome,
    Source,
    build_document,
    shorten,
)
from ragkeel.ingestion.parsers.encoding import decode_bytes
from ragkeel.types import Block, BlockKind

__all__ = ["parse"]

_REMOVED_TAGS = [
    "script", "style", "noscript", "nav", "aside", "form", "svg", "iframe", "template", "head",
]  # fmt: skip
_PAGE_CHROME = ["header", "footer"]  # removed unless scoped to an article/main/section
_SECTIONING = ["article", "main", "section"]
_REMOVED_ROLES = frozenset({"navigation", "banner", "contentinfo"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCK_TAGS = frozenset([
    "address", "article", "blockquote", "body", "caption", "dd", "details", "dialog", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "hr", "html", "li", "main", "p", "section",
    "summary",
])  # fmt: skip
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_SPACES = re.compile(r"\s+")


def parse(source: Source) -> ParseOutcome:
    text = _decode_html(source.read_bytes(), source.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)  # XHTML is read as HTML on purpose
        soup = BeautifulSoup(text, "lxml")
    title_tag = soup.find("title")
    page_title = _inline_text(title_tag) if isinstance(title_tag, Tag) else ""
    source.check_time("the HTML parse")
    _remove_boilerplate(soup)
    walker = _Walker(source)
    try:
        walker.walk(_content_root(soup))
    except RecursionError as exc:
        raise ParseError(
            f"{source.name}: HTML elements nested too deeply to read",
            hint="the page is malformed or hostile; simplify or re-export it",
        ) from exc
    walker.flush()
    h1 = next((b.text for b in walker.blocks if b.kind == "heading" and b.level == 1), "")
    title = shorten(page_title or h1 or source.path.stem)
    return ParseOutcome([build_document(source.name, title, walker.blocks)])


def _decode_html(data: bytes, name: str) -> str:
    """Valid UTF-8 wins (a wrong ``<meta charset>`` is common); else the declared charset."""
    if not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        declared = _META_CHARSET.search(data[:4096])
        if declared:
            try:
                return data.decode(declared.group(1).decode("ascii"), errors="replace")
            except LookupError:
                pass  # an unknown label: fall back to detection
    return decode_bytes(data, name)


def _remove_boilerplate(soup: BeautifulSoup) -> None:
    for tag in soup.find_all(_REMOVED_TAGS):
        tag.decompose()
    chrome = [t for t in soup.find_all(_PAGE_CHROME) if t.find_parent(_SECTIONING) is None]
    for tag in chrome:
        if not tag.decomposed:
            tag.decompose()
    doomed = [
        tag
        for tag in soup.find_all(True)
        if isinstance(tag, Tag)
        and (
            str(tag.get("role", "")).lower() in _REMOVED_ROLES
            or str(tag.get("aria-hidden", "")).lower() == "true"
            or tag.has_attr("hidden")
        )
    ]
    for tag in doomed:
        if not tag.decomposed:
            tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()


def _content_root(soup: BeautifulSoup) -> Tag:
    main = soup.find("main")
    if isinstance(main, Tag):
        return main
    articles = soup.find_all("article")
    if len(articles) == 1 and isinstance(articles[0], Tag):
        return articles[0]
    body = soup.find("body")
    return body if isinstance(body, Tag) else soup


class _Walker:
    """Depth-first walk that buffers inline text and emits a block at each block boundary."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.blocks: list[Block] = []
        self.trail = HeadingTrail()
        self.buffer: list[str] = []
        self.elements = 0

    def walk(self, node: PageElement) -> None:
        if isinstance(node, NavigableString):
            if type(node) is NavigableString:  # skip CData, doctype, processing instructions
                self.buffer.append(_SPACES.sub(" ", str(node)))
            return
        if not isinstance(node, Tag):
            return
        self.elements += 1
        self.source.check_time(f"element {self.elements}")
        name = node.name.lower()
        if name in _HEADINGS:
            self.flush()
            text = _inline_text(node)
            if text:
                self.trail.enter(_HEADINGS[name], text)
                self._emit(text, "heading", _HEADINGS[name])
        elif name == "table":
            self.flush()
            self._emit(_table_text(node), "table")
        elif name == "pre":
            self.flush()
            self._emit(node.get_text(), "code")
        elif name in ("ul", "ol"):
            self.flush()
            self._emit("\n".join(_list_lines(node, depth=0)), "list")
        elif name == "br":
            self.buffer.append("\n")
        else:
            is_block = name in _BLOCK_TAGS
            if is_block:
                self.flush()
            for child in list(node.children):
                self.walk(child)
            if is_block:
                self.flush()

    def flush(self) -> None:
        text = "\n".join(part.strip() for part in "".join(self.buffer).split("\n"))
        self.buffer = []
        if text.strip():
            self._emit(text, "paragraph")

    def _emit(self, text: str, kind: BlockKind, level: int = 0) -> None:
        self.blocks.append(Block(text=text, kind=kind, heading_path=self.trail.path, level=level))


def _inline_text(tag: Tag) -> str:
    return _SPACES.sub(" ", tag.get_text(" ")).strip()


def _list_lines(node: Tag, depth: int) -> list[str]:
    lines: list[str] = []
    for item in node.find_all("li", recursive=False):
        nested = [
            sub
            for sub in item.find_all(["ul", "ol"])
            if isinstance(sub, Tag) and sub.find_parent("li") is item
        ]
        for sub in nested:
            sub.extract()
        text = _inline_text(item)
        if text:
            lines.append(f"{'  ' * depth}- {text}")
        for sub in nested:
            lines.extend(_list_lines(sub, depth + 1))
    return lines


def _table_text(table: Tag) -> str:
    lines: list[str] = []
    caption = table.find("caption")
    if isinstance(caption, Tag):
        lines.append(_inline_text(caption))
    for row in table.find_all("tr"):
        if not isinstance(row, Tag) or row.find_parent("table") is not table:
            continue  # rows of a nested table are read with that table's cells
        cells = [_inline_text(cell) for cell in row.find_all(["td", "th"], recursive=False)]
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)

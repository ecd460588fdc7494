"""Output checks on a generated answer: the last line of defence against prompt injection.

A retrieved document may carry instructions (OWASP LLM01, indirect prompt injection); the prompt
(``answer_v3``: sources as delimited data, an instruction hierarchy) makes the model less likely
to obey them, and these checks catch what gets through, in code, whatever the prompt said:

- **Canary.** The system message carries a secret marker (``{canary}`` in the template,
  ``OutputGuard.canary``). An answer containing it repeats the system prompt: it is dropped, and
  the answer flow falls back to the extractive answer, degraded with reason ``OUTPUT_BLOCKED``.
- **Images.** A markdown image (``![alt](url)``) or an HTML ``<img>`` in an answer is fetched by
  the client that renders it, with no click: the classic exfiltration channel (the model is told
  to put the answer, or another source's secret, into the URL). Images are replaced by their alt
  text unless their host is in ``allowed_hosts``. An answer is text with citations; it never
  needs an image from a document.
- **Links.** A markdown link (``[text](url)``) or a bare URL stays only when the URL appears
  *verbatim* in a packed source, or its host is in ``allowed_hosts``; otherwise the link becomes
  its text and a bare URL becomes ``[link removed]``. Verbatim, not "host seen in the sources":
  an exfiltration URL is the attacker's own host (present in the injected source) with data
  appended, so a host rule would keep exactly the links to stop. What this does not stop: a
  URL a document carries, quoted unchanged (a phishing link in a source is that source's
  content; ``allowed_hosts`` plus an empty source match would, at the cost of every link).

``OutputGuard.check`` is pure (text in, ``OutputCheck`` out) and runs on the whole answer after
generation (``guard_answer``). While the answer streams, ``GuardedStream`` holds back what may
still become a link, an image or the canary: it lets text out only up to a whitespace outside
any open ``[``, ``(`` or ``<``, checked piece by piece, so a client rendering the stream never
receives an image or link the final check removes. Checking pieces cut there gives the same
text as checking the whole (no construct spans such a cut; the canary has no whitespace). Once
the canary shows, nothing more is let out: the answer is dropped, and its stream voided by a
non-fatal ``ErrorEvent`` like any other fallback (``answer.py``).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ragkeel.gateway.calllog import CallLog
from ragkeel.generation.context import PackedContext

OUTPUT_BLOCKED = "OUTPUT_BLOCKED"  # degraded reason: the answer repeated the system prompt
LINK_REMOVED = "[link removed]"
CANARY_PREFIX = "RGK-CANARY-"

# ![alt](url "title") and [text](url "title"); the url may not contain spaces or ')'.
_MD_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_MD_LINK = re.compile(r"\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_HTML_ALT = re.compile(r"\balt\s*=\s*[\"']([^\"']*)[\"']", re.IGNORECASE)
_HTML_SRC = re.compile(r"\bsrc\s*=\s*[\"']?([^\"'\s>]+)", re.IGNORECASE)
_BARE_URL = re.compile(r"\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>()\[\]\"']+", re.IGNORECASE)
_TRAILING = ".,;:!?'\""
_LinkFn = Callable[[re.Match[str]], str]


_CANARY_VALUE = re.compile(re.escape(CANARY_PREFIX) + r"[0-9a-fA-F]+")


def mask_canaries(text: str) -> str:
    """``text`` with every canary's secret part masked: what a stored prompt may keep (a trace
    read back through the API or the dashboard must not hand out the marker that identifies a
    system-prompt leak)."""
    return _CANARY_VALUE.sub(CANARY_PREFIX + "****", text)


def new_canary() -> str:
    """A fresh canary: unguessable, so a document cannot plant it to get answers dropped."""
    return CANARY_PREFIX + secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class OutputCheck:
    text: str  # the answer with foreign links and images removed
    removed: tuple[str, ...] = ()  # the URLs taken out, in order
    blocked: bool = False  # the canary was in the answer: drop it


@dataclass(frozen=True, slots=True)
class OutputGuard:
    """The checks of one deployment: its system prompt's ``canary`` (None: no canary check)
    and the hosts whose links and images may always stay (lower-case, exact or a subdomain)."""

    canary: str | None = None
    allowed_hosts: frozenset[str] = frozenset()

    def check(self, text: str, sources: Iterable[str]) -> OutputCheck:
        """``text`` checked against the packed ``sources`` (their texts as sent to the model)."""
        if self.canary and self.canary.casefold() in text.casefold():
            return OutputCheck(text, blocked=True)
        corpus = "\n".join(sources)
        removed: list[str] = []

        def image(match: re.Match[str]) -> str:
            if self._allowed_host(match.group(2)):
                return match.group(0)
            removed.append(match.group(2))
            return match.group(1)

        def html_image(match: re.Match[str]) -> str:
            src = _HTML_SRC.search(match.group(0))
            url = src.group(1) if src else ""
            if url and self._allowed_host(url):
                return match.group(0)
            removed.append(url)
            alt = _HTML_ALT.search(match.group(0))
            return alt.group(1) if alt else ""

        def link(match: re.Match[str]) -> str:
            if self._allowed(match.group(2), corpus):
                return match.group(0)
            removed.append(match.group(2))
            return match.group(1)

        def bare(match: re.Match[str]) -> str:
            url = match.group(0).rstrip(_TRAILING)
            tail = match.group(0)[len(url) :]
            if self._allowed(url, corpus):
                return match.group(0)
            removed.append(url)
            return LINK_REMOVED + tail

        out = _MD_IMAGE.sub(image, text)
        out = _HTML_IMG.sub(html_image, out)
        out = _protect_links(out, link)
        out = _outside_links(out, bare)
        return OutputCheck(out, tuple(removed))

    def _allowed(self, url: str, corpus: str) -> bool:
        return bool(url) and (url in corpus or self._allowed_host(url))

    def _allowed_host(self, url: str) -> bool:
        host = host_of(url)
        return bool(host) and any(host == h or host.endswith("." + h) for h in self.allowed_hosts)


class GuardedStream:
    """The streamed tokens of one answer, let out only as far as they are safe (see above)."""

    def __init__(self, guard: OutputGuard, context: PackedContext) -> None:
        self._guard = guard
        self._sources = _source_texts(context)
        self._text = ""
        self._sent = 0  # how much of _text has been checked and let out
        self.blocked = False

    def feed(self, delta: str) -> str:
        """What may be shown of the answer so far, beyond what was shown already."""
        self._text += delta
        return self._release(_safe_cut(self._text, self._sent))

    def flush(self) -> str:
        """The rest, checked, at the end of the answer."""
        return self._release(len(self._text))

    def _release(self, cut: int) -> str:
        if self.blocked or cut <= self._sent:
            return ""
        check = self._guard.check(self._text[self._sent : cut], self._sources)
        if check.blocked:
            self.blocked = True
            return ""
        self._sent = cut
        return check.text


def _safe_cut(text: str, start: int) -> int:
    """The end of the longest prefix of ``text`` (from ``start``, where nothing is open) that
    ends with whitespace outside any open bracket: ``start`` if there is none."""
    depth, cut = 0, start
    for i in range(start, len(text)):
        ch = text[i]
        if ch in "[(<":
            depth += 1
        elif ch in "])>":
            depth = max(0, depth - 1)
        elif ch.isspace() and depth == 0 and text[i - 1 : i] != "]":
            cut = i + 1
    return cut


def _source_texts(context: PackedContext) -> list[str]:
    return [f"{s.chunk.source}\n{s.label}\n{s.text}" for s in context.sources]


def guard_answer(
    guard: OutputGuard, text: str, context: PackedContext, log: CallLog
) -> tuple[str, tuple[str, str] | None]:
    """``(text, degraded)`` for a generated answer: the text with foreign links and images
    removed, and ``(OUTPUT_BLOCKED, message)`` when it must be dropped. What was done is
    recorded as a ``safety`` decision in the request's call log (and so in its trace)."""
    check = guard.check(text, _source_texts(context))
    if check.blocked:
        log.decide("safety", "answer dropped: it repeats the system prompt's canary")
        return text, (
            OUTPUT_BLOCKED,
            "the answer repeated the system prompt; answered extractively",
        )
    if check.removed:
        log.decide("safety", f"removed {len(check.removed)} link(s) or image(s) not in the sources")
    return check.text, None


def host_of(url: str) -> str:
    """The lower-case host of ``url`` ('' when it has none); ``www.x`` counts as a URL."""
    if url.lower().startswith("www."):
        url = "http://" + url
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:  # e.g. a malformed IPv6 literal
        return ""


def _protect_links(text: str, link: _LinkFn) -> str:
    return _MD_LINK.sub(link, text)


def _outside_links(text: str, bare: _LinkFn) -> str:
    """``bare`` applied to URLs outside the markdown links kept (their URL is checked already)."""
    out: list[str] = []
    last = 0
    for match in _MD_LINK.finditer(text):
        out.append(_BARE_URL.sub(bare, text[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_BARE_URL.sub(bare, text[last:]))
    return "".join(out)

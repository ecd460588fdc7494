"""Pack the best hits into a token budget as numbered sources ``[1]..[n]``.

Hits are taken in rank order. A hit is skipped as a duplicate when its chunk id was already
packed, or when more than ``near_duplicate`` (default 80%) of its analysed terms are already in
one packed chunk (overlapping windows of one document, the same boilerplate in two documents):
the better-ranked copy stays. Packing stops at the first hit that does not fit; only when
nothing is packed yet is that hit cut (at a word boundary) to fill the budget alone.

Each source renders as a header line (``[n] Title > Heading, p. 3``) and its text (without a
first line repeating the title or a heading); the budget counts the rendered blocks with the
model's own ``count_tokens``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from ragkeel.storage.analyzer import analyze
from ragkeel.types import Chunk, SearchHit

CountTokens = Callable[[str], int]
DEFAULT_CONTEXT_BUDGET = 1000
NEAR_DUPLICATE = 0.8
ELLIPSIS = " …"
_WORD_END = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class Source:
    number: int
    hit: SearchHit
    text: str  # the chunk text as packed (cut when ``truncated``)
    tokens: int  # of the rendered block
    truncated: bool = False

    @property
    def chunk(self) -> Chunk:
        return self.hit.chunk

    @property
    def label(self) -> str:
        return source_label(self.hit.chunk)

    def render(self) -> str:
        return f"[{self.number}] {self.label}\n{self.text}"


@dataclass(frozen=True, slots=True)
class PackedContext:
    sources: tuple[Source, ...]
    budget: int
    tokens: int
    duplicates: tuple[str, ...] = ()  # chunk ids skipped as duplicates
    left_out: tuple[str, ...] = ()  # chunk ids that did not fit

    def render(self) -> str:
        return "\n\n".join(source.render() for source in self.sources)

    def source(self, number: int) -> Source | None:
        return self.sources[number - 1] if 1 <= number <= len(self.sources) else None


def source_label(chunk: Chunk) -> str:
    """Title and headings, else the file name; plus the page when known."""
    path = " > ".join(chunk.context_path()) or PurePath(chunk.source).name or chunk.document_id
    return f"{path}, p. {chunk.page}" if chunk.page is not None else path


def source_body(chunk: Chunk) -> str:
    """The chunk text without a first line that repeats the title or a heading (the label
    already shows it: no tokens spent twice)."""
    text = chunk.text.strip()
    first, _, rest = text.partition("\n")
    shown = {part.casefold() for part in chunk.context_path()}
    return rest.strip() if rest.strip() and first.strip().casefold() in shown else text


def pack_context(
    hits: Sequence[SearchHit],
    count_tokens: CountTokens,
    budget: int = DEFAULT_CONTEXT_BUDGET,
    *,
    near_duplicate: float = NEAR_DUPLICATE,
) -> PackedContext:
    sources: list[Source] = []
    kept_terms: list[frozenset[str]] = []
    seen: set[str] = set()
    duplicates: list[str] = []
    used = 0
    for index, hit in enumerate(hits):
        chunk = hit.chunk
        terms = frozenset(analyze(chunk.text))
        if chunk.id in seen or _near_duplicate(terms, kept_terms, near_duplicate):
            duplicates.append(chunk.id)
            continue
        if not chunk.text.strip():
            continue
        source = Source(len(sources) + 1, hit, source_body(chunk), 0)
        tokens = count_tokens(source.render())
        if used + tokens > budget:
            if sources:
                left_out = [h.chunk.id for h in hits[index:] if h.chunk.id not in seen]
                return _packed(sources, budget, used, duplicates, left_out)
            cut = _truncate(source, count_tokens, budget)
            if cut is None:
                return _packed(
                    sources, budget, used, duplicates, [h.chunk.id for h in hits[index:]]
                )
            source, tokens = cut, cut.tokens
        sources.append(Source(source.number, hit, source.text, tokens, source.truncated))
        kept_terms.append(terms)
        seen.add(chunk.id)
        used += tokens
    return _packed(sources, budget, used, duplicates, [])


def _packed(
    sources: list[Source], budget: int, used: int, duplicates: list[str], left_out: list[str]
) -> PackedContext:
    return PackedContext(tuple(sources), budget, used, tuple(duplicates), tuple(left_out))


def _near_duplicate(terms: frozenset[str], kept: list[frozenset[str]], threshold: float) -> bool:
    """More than ``threshold`` of ``terms`` already in one kept chunk (containment, so a chunk
    that adds little to a packed one goes, while a bigger one that contains it stays)."""
    if not terms:
        return False
    return any(len(terms & other) / len(terms) > threshold for other in kept)


def _truncate(source: Source, count_tokens: CountTokens, budget: int) -> Source | None:
    """The longest word-boundary prefix of ``source`` whose block fits ``budget``, or ``None``
    when not even one word does. Binary search: O(log words) calls to ``count_tokens``."""
    ends = [m.end() for m in _WORD_END.finditer(source.text)]
    best: Source | None = None
    lo, hi = 1, len(ends)
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = Source(
            source.number, source.hit, source.text[: ends[mid - 1]] + ELLIPSIS, 0, True
        )
        tokens = count_tokens(candidate.render())
        if tokens <= budget:
            best = Source(candidate.number, candidate.hit, candidate.text, tokens, True)
            lo = mid + 1
        else:
            hi = mid - 1
    return best

"""Pack the best hits into a token budget as numbered sources ``[1]..[n]``.

Hits are taken in rank order. A hit is skipped as a duplicate when its chunk id was already
packed, or when more than ``near_duplicate`` (default 80%) of its analysed terms are already in
one packed chunk (overlapping windows of one document, the same boilerplate in two documents):
the better-ranked copy stays. Packing stops at the first hit that does not fit; only when
nothing is packed yet is that hit cut (at a word boundary) to fill the budget alone.

Each source renders as a header line (``[n] Title > Heading, p. 3``) and its text (without a
first line repeating the title or a heading); the budget counts the rendered blocks with the
model's own ``count_tokens``.

Two packings (``Packing.mode``, setting ``generation.packing.mode``):

- ``chunks``: each source is its whole chunk, as above.
- ``sentences`` (issue 14): query-aware sentence selection inside the same deduplicated hits.
  Every sentence of every hit (``text.split_sentences``) is scored by the question's content
  terms it holds, each weighing ``1 + idf`` (idf over all those sentences), times
  ``1 + density`` (the share of the sentence's terms that are question terms), divided by the
  hit's rank prior ``1 + 0.2 (rank - 1)``. Sentences scoring at least ``min_relative`` of the
  best are taken best first, each with ``neighbours`` sentences on either side (coherence),
  at most ``max_sentences`` per source, while the rendered blocks fit the budget. A source is
  its kept sentences in their original order, copied verbatim from the chunk (runs of adjacent
  sentences keep the text between them; a gap shows as `` … ``), and is numbered in rank order
  among the hits that kept a sentence. So ``[n]`` still names one chunk (``Source.hit``), and
  the citation check reads ``Source.text``: exactly what the model saw. A question with no
  content term, or whose terms no sentence holds, falls back to whole chunks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from ragkeel.generation.text import content_terms, idf_weights, sentence_spans
from ragkeel.storage.analyzer import analyze
from ragkeel.types import Chunk, SearchHit

CountTokens = Callable[[str], int]
DEFAULT_CONTEXT_BUDGET = 1000
NEAR_DUPLICATE = 0.8
ELLIPSIS = " …"
_WORD_END = re.compile(r"\S+")
GAP = " … "  # between two runs of kept sentences of one source
RANK_DECAY = 0.2
PackingMode = Literal["chunks", "sentences"]


@dataclass(frozen=True, slots=True)
class Packing:
    """How hits become sources: whole ``chunks`` or the question's ``sentences`` (see the module
    docstring); ``max_sentences`` per source, ``neighbours`` either side of a chosen sentence,
    ``min_relative`` of the best sentence's score to be chosen at all."""

    mode: PackingMode = "chunks"
    max_sentences: int = 6
    neighbours: int = 1
    min_relative: float = 0.25

    def __post_init__(self) -> None:
        if self.mode not in ("chunks", "sentences"):
            raise ValueError(f"packing mode must be 'chunks' or 'sentences', got {self.mode!r}")
        if self.max_sentences < 1 or self.neighbours < 0 or not 0 <= self.min_relative <= 1:
            raise ValueError("max_sentences >= 1, neighbours >= 0, 0 <= min_relative <= 1")


WHOLE_CHUNKS = Packing()


@dataclass(frozen=True, slots=True)
class Source:
    number: int
    hit: SearchHit
    text: str  # the chunk text as packed (cut when ``truncated``)
    tokens: int  # of the rendered block
    truncated: bool = False  # cut at the budget, or only some of its sentences kept

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
    left_out: tuple[str, ...] = ()  # chunk ids that did not fit (or kept no sentence)
    packing: PackingMode = "chunks"  # how the sources were cut (sentences: fell back if none)

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
    question: str = "",
    packing: Packing = WHOLE_CHUNKS,
) -> PackedContext:
    """``hits`` as numbered sources within ``budget`` tokens: whole chunks, or the sentences
    of them that matter for ``question`` when ``packing.mode`` is ``sentences``."""
    kept, duplicates = _distinct(hits, near_duplicate)
    if packing.mode == "sentences":
        packed = _pack_sentences(kept, question, count_tokens, budget, packing, duplicates)
        if packed is not None:
            return packed
    return _pack_chunks(kept, count_tokens, budget, duplicates)


def _distinct(
    hits: Sequence[SearchHit], near_duplicate: float
) -> tuple[list[SearchHit], list[str]]:
    """The hits worth packing, in rank order (duplicates and empty chunks out), and the ids of
    the duplicates."""
    kept: list[SearchHit] = []
    kept_terms: list[frozenset[str]] = []
    seen: set[str] = set()
    duplicates: list[str] = []
    for hit in hits:
        chunk = hit.chunk
        terms = frozenset(analyze(chunk.text))
        if chunk.id in seen or _near_duplicate(terms, kept_terms, near_duplicate):
            duplicates.append(chunk.id)
            continue
        if not chunk.text.strip():
            continue
        kept.append(hit)
        kept_terms.append(terms)
        seen.add(chunk.id)
    return kept, duplicates


def _pack_chunks(
    hits: list[SearchHit], count_tokens: CountTokens, budget: int, duplicates: list[str]
) -> PackedContext:
    sources: list[Source] = []
    used = 0
    for index, hit in enumerate(hits):
        source = Source(len(sources) + 1, hit, source_body(hit.chunk), 0)
        tokens = count_tokens(source.render())
        if used + tokens > budget:
            left_out = [h.chunk.id for h in hits[index:]]
            if sources:
                return _packed(sources, budget, used, duplicates, left_out)
            cut = _truncate(source, count_tokens, budget)
            if cut is None:
                return _packed(sources, budget, used, duplicates, left_out)
            source, tokens = cut, cut.tokens
        sources.append(Source(source.number, hit, source.text, tokens, source.truncated))
        used += tokens
    return _packed(sources, budget, used, duplicates, [])


@dataclass(frozen=True, slots=True)
class _Sentences:
    """One hit cut into sentences: their spans in ``body`` and their content terms."""

    hit: SearchHit
    body: str
    spans: tuple[tuple[int, int], ...]
    terms: tuple[frozenset[str], ...]

    def text(self, kept: set[int]) -> str:
        """The kept sentences in order; adjacent ones with the text between them."""
        runs: list[list[int]] = []
        for position in sorted(kept):
            if runs and position == runs[-1][-1] + 1:
                runs[-1].append(position)
            else:
                runs.append([position])
        parts = [self.body[self.spans[run[0]][0] : self.spans[run[-1]][1]] for run in runs]
        lead = "… " if runs[0][0] > 0 else ""
        tail = " …" if runs[-1][-1] < len(self.spans) - 1 else ""
        return lead + GAP.join(parts) + tail


def _pack_sentences(
    hits: list[SearchHit],
    question: str,
    count_tokens: CountTokens,
    budget: int,
    packing: Packing,
    duplicates: list[str],
) -> PackedContext | None:
    """The sentence packing (module docstring); None when no sentence holds a question term."""
    wanted = set(content_terms(question))
    cut = [_sentences(hit) for hit in hits]
    pool = [terms for c in cut for terms in c.terms]
    if not wanted or not pool:
        return None
    idf = idf_weights(wanted, pool)
    scored: list[tuple[float, int, int]] = []  # (score, rank, position)
    for rank, c in enumerate(cut):
        for position, terms in enumerate(c.terms):
            shared = terms & wanted
            if shared:
                weight = sum(1.0 + idf[t] for t in shared) * (1.0 + len(shared) / len(terms))
                scored.append((weight / (1.0 + RANK_DECAY * rank), rank, position))
    if not scored:
        return None
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    floor = scored[0][0] * packing.min_relative
    kept: dict[int, set[int]] = {}
    tokens: dict[int, int] = {}
    for score, rank, position in scored:
        if score < floor:
            break
        have = kept.get(rank, set())
        if position in have:
            continue
        near = range(position - packing.neighbours, position + packing.neighbours + 1)
        wider = have | {p for p in near if 0 <= p < len(cut[rank].spans)}
        for choice in (wider, have | {position}):
            if len(choice) > packing.max_sentences:
                continue
            block = count_tokens(_render(cut[rank], choice, rank))
            if sum(tokens.values()) - tokens.get(rank, 0) + block <= budget:
                kept[rank], tokens[rank] = choice, block
                break
    if not kept:
        return None
    sources: list[Source] = []
    for rank in sorted(kept):
        c, chosen = cut[rank], kept[rank]
        sources.append(
            Source(
                len(sources) + 1, c.hit, c.text(chosen), tokens[rank], len(chosen) < len(c.spans)
            )
        )
    left_out = [c.hit.chunk.id for rank, c in enumerate(cut) if rank not in kept]
    used = sum(tokens.values())
    return PackedContext(
        tuple(sources), budget, used, tuple(duplicates), tuple(left_out), "sentences"
    )


def _sentences(hit: SearchHit) -> _Sentences:
    body = source_body(hit.chunk)
    spans = tuple(sentence_spans(body))
    return _Sentences(
        hit, body, spans, tuple(frozenset(content_terms(body[a:b])) for a, b in spans)
    )


def _render(cut: _Sentences, kept: set[int], rank: int) -> str:
    """The block of ``cut`` with ``kept`` sentences as counted: numbered ``rank + 1``, never
    fewer digits than the number it gets (hits that keep nothing are not numbered)."""
    return Source(rank + 1, cut.hit, cut.text(kept), 0).render()


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

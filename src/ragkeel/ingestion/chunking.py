"""Structure-aware, token-bounded chunking with overlap.

The document text is its blocks joined by blank lines; every chunk is a contiguous span
``text[start:end]`` of it. Boundaries are chosen in this order of preference: headings (a
heading always starts a new chunk), block (paragraph/table) ends, sentence ends (table and
code rows), and only for a single over-long sentence, token windows. Sizes are counted with the
embedder's own tokenizer, and the budget leaves room for the title/heading prefix that
``Chunk.index_text`` adds, so what the embedder sees fits its window.

Overlap: the next chunk starts with the trailing units of the previous one whose tokens add up
to at most ``overlap`` (token windows overlap by exactly that many tokens).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ragkeel.tokens import TokenCounter
from ragkeel.types import Block

BLOCK_SEPARATOR = "\n\n"
_SENTENCE_END = re.compile(r"(?<=[.!?;:])[\"')\]]*\s+(?=\S)")


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    start: int
    end: int
    heading_path: tuple[str, ...]
    page: int | None
    token_count: int


@dataclass(frozen=True, slots=True)
class _Unit:
    start: int
    end: int
    tokens: int
    block: int
    heading: bool


def assemble_text(blocks: tuple[Block, ...]) -> tuple[str, list[tuple[int, int]]]:
    """Join block texts with blank lines; return the text and each block's (start, end)."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for block in blocks:
        spans.append((pos, pos + len(block.text)))
        pos += len(block.text) + len(BLOCK_SEPARATOR)
    return BLOCK_SEPARATOR.join(b.text for b in blocks), spans


class Chunker:
    def __init__(self, tokenizer: TokenCounter, max_tokens: int = 256, overlap: float = 0.15):
        if max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap = overlap

    def chunk(self, title: str, blocks: tuple[Block, ...]) -> tuple[str, list[ChunkSpan]]:
        text, spans = assemble_text(blocks)
        prefix_tokens = self.tokenizer.count(title) + 2 if title else 0
        budget = max(self.max_tokens - prefix_tokens, self.max_tokens // 2)
        overlap = int(budget * self.overlap)
        units: list[_Unit] = []
        for i, (block, (b_start, _)) in enumerate(zip(blocks, spans, strict=True)):
            units.extend(self._units(block, i, b_start, budget, overlap))
        chunks: list[ChunkSpan] = []
        current: list[_Unit] = []
        for unit in units:
            body = [u for u in current if not u.heading]
            starts_section = unit.heading and body
            too_big = sum(u.tokens for u in current) + unit.tokens > budget
            if current and (starts_section or too_big):
                chunks.append(self._span(current, blocks))
                current = [] if starts_section else self._overlap_tail(current, overlap)
                while current and sum(u.tokens for u in current) + unit.tokens > budget:
                    current.pop(0)
            current.append(unit)
        if current:
            chunks.append(self._span(current, blocks))
        return text, chunks

    def _units(
        self, block: Block, index: int, offset: int, budget: int, overlap: int
    ) -> list[_Unit]:
        heading = block.kind == "heading"
        tokens = self.tokenizer.count(block.text)
        if tokens <= budget or heading:
            return [_Unit(offset, offset + len(block.text), tokens, index, heading)]
        pieces = _split_lines(block.text) if block.kind in ("table", "code", "list") else []
        pieces = pieces if len(pieces) > 1 else _split_sentences(block.text)
        out: list[_Unit] = []
        for p_start, p_end in pieces:
            piece = block.text[p_start:p_end]
            n = self.tokenizer.count(piece)
            if n <= budget:
                out.append(_Unit(offset + p_start, offset + p_end, n, index, False))
                continue
            out.extend(self._windows(piece, offset + p_start, index, budget, overlap))
        return out

    def _windows(
        self, piece: str, offset: int, index: int, budget: int, overlap: int
    ) -> list[_Unit]:
        """Token windows for one over-long sentence; consecutive windows share ``overlap``."""
        spans = self.tokenizer.offsets(piece)
        step = max(budget - overlap, 1)
        out: list[_Unit] = []
        for first in range(0, len(spans), step):
            window = spans[first : first + budget]
            out.append(
                _Unit(offset + window[0][0], offset + window[-1][1], len(window), index, False)
            )
            if first + budget >= len(spans):
                break
        return out

    @staticmethod
    def _overlap_tail(units: list[_Unit], overlap: int) -> list[_Unit]:
        tail: list[_Unit] = []
        total = 0
        for unit in reversed(units):
            if unit.heading or total + unit.tokens > overlap:
                break
            tail.insert(0, unit)
            total += unit.tokens
        return tail

    @staticmethod
    def _span(units: list[_Unit], blocks: tuple[Block, ...]) -> ChunkSpan:
        used = [blocks[u.block] for u in units]
        path = max((b.heading_path for b in used), key=len)
        page = next((b.page for b in used if b.page is not None), None)
        return ChunkSpan(units[0].start, units[-1].end, path, page, sum(u.tokens for u in units))


def _split_sentences(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos = 0
    for match in _SENTENCE_END.finditer(text):
        out.append((pos, match.start() + len(match.group(0).rstrip())))
        pos = match.end()
    if pos < len(text):
        out.append((pos, len(text)))
    return [(s, e) for s, e in out if text[s:e].strip()]


def _split_lines(text: str) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        if line.strip():
            out.append((pos, pos + len(line)))
        pos += len(line) + 1
    return out

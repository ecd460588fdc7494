"""Token counting. Chunk sizes are measured with the embedder's own tokenizer; this module holds
the protocol and a dependency-free fallback used by the hashing embedder and tests."""

from __future__ import annotations

import re
from typing import Protocol

_WORDISH = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class TokenCounter(Protocol):
    def count(self, text: str) -> int:
        """Number of model tokens in ``text`` (without special tokens)."""
        ...

    def offsets(self, text: str) -> list[tuple[int, int]]:
        """Character spans of each token, in order (used to cut text at token boundaries)."""
        ...


class RegexTokenCounter:
    """Words and punctuation marks as tokens: a close, fast stand-in for WordPiece counts."""

    def count(self, text: str) -> int:
        return sum(1 for _ in _WORDISH.finditer(text))

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORDISH.finditer(text)]

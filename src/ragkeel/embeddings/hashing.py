"""A deterministic embedder with no model, for tests and instant demos.

Features are lowercase word unigrams (``\\w+``) and character 3-grams of each word with ``<``/``>``
boundary marks (so ``key`` gives ``<ke``, ``key``, ``ey>``). Each feature is hashed with
blake2b (stable across processes, unlike the salted built-in ``hash``) to a bucket and a sign
("signed hashing" cancels collisions on average); counts are damped with ``1 + log(tf)`` and
the vector is L2-normalised. Texts that share words or word pieces are close; unrelated ones
are near-orthogonal.

A text with no word characters (empty, blank, punctuation only) has no features. It gets a
fixed unit vector, the one of a reserved feature, rather than a zero vector (cosine with a
zero vector is undefined): all such texts are identical to one another and near-orthogonal to
everything else.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ragkeel.embeddings.base import Matrix, Vector
from ragkeel.tokens import RegexTokenCounter

_WORD = re.compile(r"\w+", re.UNICODE)
_EMPTY_FEATURE = "\x00empty"
_TRIGRAM_WEIGHT = 0.5  # word identity counts double a shared 3-gram


class HashingEmbedder:
    """``Embedder`` built from feature hashing; thread-safe and dependency-free."""

    def __init__(self, dimension: int = 384) -> None:
        if dimension < 2:
            raise ValueError("dimension must be at least 2")
        self._dimension = dimension
        self._counter = RegexTokenCounter()
        self.calls = 0
        self.texts_embedded = 0

    @property
    def name(self) -> str:
        return f"hashing-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def tokenizer(self) -> RegexTokenCounter:
        return self._counter

    def embed_documents(self, texts: Sequence[str]) -> Matrix:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._embed_one(text)
        if texts:
            self.calls += 1
            self.texts_embedded += len(texts)
        return out

    def embed_query(self, text: str) -> Vector:
        row: Vector = self.embed_documents([text])[0]
        return row

    def _embed_one(self, text: str) -> Vector:
        vector = np.zeros(self._dimension, dtype=np.float64)
        features = _features(text)
        if not features:
            features = {_EMPTY_FEATURE: 1.0}
        for feature, weight in features.items():
            bucket, sign = _bucket(feature, self._dimension)
            vector[bucket] += sign * weight
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:  # every feature cancelled out: fall back to the fixed vector
            bucket, sign = _bucket(_EMPTY_FEATURE, self._dimension)
            vector[bucket] = sign
            norm = 1.0
        return (vector / norm).astype(np.float32)


def _features(text: str) -> dict[str, float]:
    """Weighted features of ``text``: ``w:`` words and ``c:`` character 3-grams."""
    raw: Counter[str] = Counter()
    for word in _WORD.findall(text.lower()):
        raw["w:" + word] += 1
        marked = f"<{word}>"
        for i in range(len(marked) - 2):
            raw["c:" + marked[i : i + 3]] += 1
    return {
        feature: (1.0 if feature.startswith("w:") else _TRIGRAM_WEIGHT) * (1.0 + math.log(tf))
        for feature, tf in raw.items()
    }


@lru_cache(maxsize=1 << 16)
def _bucket(feature: str, dimension: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return (value >> 1) % dimension, (1.0 if value & 1 else -1.0)

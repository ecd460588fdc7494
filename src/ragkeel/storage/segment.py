"""In-memory search segment for one collection: BM25 postings and a dense vector matrix.

The SQLite tables are the source of truth; a segment is a read-optimised copy loaded on first
use and reloaded when the collection's generation counter moves (every committed write bumps
it), so a replaced or deleted chunk can never be returned — no ghost hits.

BM25 is Lucene's variant: idf = ln(1 + (N - df + 0.5) / (df + 0.5)) and
tf' = tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avgdl)), with statistics per collection.
Dense search is exact: one float32 matrix-vector product (vectors are L2-normalised, so the
dot product is the cosine), which at 100k x 384 is bounded by memory bandwidth (~6 ms).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class SegmentRows:
    """Raw rows as loaded from SQLite, ordered by chunk rowid."""

    rowids: I64
    chunk_ids: list[str]
    term_blobs: Sequence[bytes]
    tf_blobs: Sequence[bytes]
    lengths: npt.NDArray[np.int32]
    vectors: F32  # (n, d), may be (n, 0) when the collection has no vectors


class Segment:
    def __init__(self, rows: SegmentRows, generation: int, k1: float, b: float) -> None:
        self.generation = generation
        self.rowids = rows.rowids
        self.chunk_ids = rows.chunk_ids
        self.vectors = rows.vectors
        self.size = len(rows.chunk_ids)
        self._build_postings(rows, k1, b)

    def _build_postings(self, rows: SegmentRows, k1: float, b: float) -> None:
        n = self.size
        counts = np.fromiter((len(t) // 4 for t in rows.term_blobs), dtype=np.int64, count=n)
        terms = np.frombuffer(b"".join(rows.term_blobs), dtype=np.int32)
        tfs = np.frombuffer(b"".join(rows.tf_blobs), dtype=np.uint16).astype(np.float32)
        doc_of = np.repeat(np.arange(n, dtype=np.int32), counts)
        lengths = rows.lengths.astype(np.float32)
        avgdl = float(lengths.mean()) if n and lengths.sum() > 0 else 1.0
        norm = k1 * (1.0 - b + b * lengths / avgdl)
        weights = tfs * (k1 + 1.0) / (tfs + norm[doc_of]) if n else tfs
        order = np.argsort(terms, kind="stable")
        self._post_terms = terms[order]
        self._post_docs = doc_of[order]
        self._post_weights = weights[order].astype(np.float32)
        uniq, starts, dfs = np.unique(self._post_terms, return_index=True, return_counts=True)
        self._term_index = {
            int(t): (int(s), int(s + c)) for t, s, c in zip(uniq, starts, dfs, strict=True)
        }
        idf = np.log1p((n - dfs + 0.5) / (dfs + 0.5)).astype(np.float32)
        self._idf = {int(t): float(v) for t, v in zip(uniq, idf, strict=True)}

    def bm25(self, term_ids: Sequence[int], k: int, mask: Mask | None) -> list[tuple[int, float]]:
        """Top-``k`` (position, score) for a bag of query term ids (repeats count)."""
        if self.size == 0:
            return []
        scores = np.zeros(self.size, dtype=np.float32)
        hit = np.zeros(self.size, dtype=np.bool_)
        for term in term_ids:
            span = self._term_index.get(term)
            if span is None:
                continue
            docs = self._post_docs[span[0] : span[1]]
            scores[docs] += self._idf[term] * self._post_weights[span[0] : span[1]]
            hit[docs] = True
        if mask is not None:
            hit &= mask
        return _top_k(scores, hit, k)

    def dense(self, query: F32, k: int, mask: Mask | None) -> list[tuple[int, float]]:
        if self.size == 0 or self.vectors.shape[1] == 0:
            return []
        scores = self.vectors @ query
        return _top_k(scores, mask, k)

    def mask_for(self, allowed_rowids: I64) -> Mask:
        """Boolean mask over positions for the given (any order) chunk rowids."""
        allowed = np.sort(allowed_rowids)
        pos = np.searchsorted(allowed, self.rowids)
        pos[pos >= len(allowed)] = 0
        return (allowed[pos] == self.rowids) if len(allowed) else np.zeros(self.size, np.bool_)


def _top_k(scores: F32, valid: Mask | None, k: int) -> list[tuple[int, float]]:
    if valid is not None:
        candidates = np.flatnonzero(valid)
        if len(candidates) == 0:
            return []
        sub = scores[candidates]
    else:
        candidates = None
        sub = scores
    k = min(k, len(sub))
    if k <= 0:
        return []
    top = np.argpartition(-sub, k - 1)[:k] if k < len(sub) else np.arange(len(sub))
    # stable order: score descending, then position ascending (deterministic ties)
    top = top[np.lexsort((top, -sub[top]))]
    positions = candidates[top] if candidates is not None else top
    return [(int(p), float(s)) for p, s in zip(positions, sub[top], strict=True)]

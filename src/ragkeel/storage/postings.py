"""Inverted lists of a segment: for each term, the row positions that contain it and the raw
term frequencies, in one CSR layout (``terms[i]``'s postings are ``docs/tfs[starts[i]:starts[i+1]]``,
positions ascending). Nothing here depends on collection statistics, so lists can be appended
to and filtered without recomputing any weight; BM25 is computed at query time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U16 = npt.NDArray[np.uint16]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Postings:
    terms: I32  # distinct term ids, ascending
    starts: I64  # len(terms) + 1 offsets into docs/tfs
    docs: I32  # row positions in the segment
    tfs: U16  # raw term frequency of the term in that row

    @classmethod
    def empty(cls) -> Postings:
        return cls(
            np.zeros(0, np.int32),
            np.zeros(1, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.uint16),
        )

    @classmethod
    def from_blobs(
        cls, term_blobs: Sequence[bytes], tf_blobs: Sequence[bytes], first_doc: int
    ) -> Postings:
        """Postings of rows ``first_doc, first_doc + 1, …`` given their stored term/tf blobs."""
        n = len(term_blobs)
        counts = np.fromiter((len(t) // 4 for t in term_blobs), dtype=np.int64, count=n)
        terms = np.frombuffer(b"".join(term_blobs), dtype=np.int32)
        tfs = np.frombuffer(b"".join(tf_blobs), dtype=np.uint16)
        if len(terms) != len(tfs):
            raise ValueError(f"{len(terms)} terms but {len(tfs)} term frequencies")
        docs = np.repeat(np.arange(first_doc, first_doc + n, dtype=np.int32), counts)
        return cls._from_unsorted(terms, docs, tfs)

    @classmethod
    def _from_unsorted(cls, terms: I32, docs: I32, tfs: U16) -> Postings:
        if len(terms) == 0:
            return cls.empty()
        order = _stable_order(terms)
        terms, docs, tfs = terms[order], docs[order], tfs[order]
        cut = np.flatnonzero(terms[1:] != terms[:-1]) + 1
        starts = np.concatenate(([0], cut, [len(terms)])).astype(np.int64)
        return cls(terms[starts[:-1]], starts, docs, tfs)

    @property
    def count(self) -> int:
        return len(self.docs)

    def span(self, term: int) -> tuple[int, int]:
        i = int(np.searchsorted(self.terms, term))
        if i < len(self.terms) and int(self.terms[i]) == term:
            return int(self.starts[i]), int(self.starts[i + 1])
        return 0, 0

    def concat(self, other: Postings) -> Postings:
        """Union with ``other``, whose row positions all come after this one's."""
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        # each of other's postings goes right after this one's run of the same term
        term_of = np.repeat(other.terms, np.diff(other.starts))
        at = self.starts[np.searchsorted(self.terms, term_of, side="right")]
        terms = np.union1d(self.terms, other.terms).astype(np.int32)
        count = np.zeros(len(terms), np.int64)
        count[np.searchsorted(terms, self.terms)] += np.diff(self.starts)
        count[np.searchsorted(terms, other.terms)] += np.diff(other.starts)
        return Postings(
            terms,
            np.concatenate(([0], np.cumsum(count))).astype(np.int64),
            np.insert(self.docs, at, other.docs),  # equal positions keep other's order
            np.insert(self.tfs, at, other.tfs),
        )

    def select(self, keep_rows: Mask | None, first_doc: int = 0) -> Postings:
        """The postings of rows where ``keep_rows`` is true (all when None), rows renumbered
        densely from ``first_doc``."""
        if keep_rows is None:
            if first_doc == 0:
                return self
            return Postings(self.terms, self.starts, self.docs + np.int32(first_doc), self.tfs)
        keep = keep_rows[self.docs]
        renumber = (np.cumsum(keep_rows, dtype=np.int64) - 1 + first_doc).astype(np.int32)
        term_of = np.repeat(np.arange(len(self.terms)), np.diff(self.starts))
        count = np.bincount(term_of[keep], minlength=len(self.terms))
        present = count > 0
        starts = np.concatenate(([0], np.cumsum(count[present]))).astype(np.int64)
        return Postings(
            np.ascontiguousarray(self.terms[present]),
            starts,
            renumber[self.docs[keep]],
            np.ascontiguousarray(self.tfs[keep]),
        )


def _stable_order(terms: I32) -> I64:
    """Stable argsort of non-negative int32 ids: LSD radix in 16-bit digits, using numpy's
    O(n) radix sort for 16-bit keys (5x faster than its timsort for int32 at 10M postings)."""
    if int(terms.min()) < 0:
        return np.argsort(terms, kind="stable")
    low = np.argsort((terms & 0xFFFF).astype(np.uint16), kind="stable")
    if int(terms.max()) < 2**16:
        return low
    high = (terms[low] >> 16).astype(np.uint16)
    return low[np.argsort(high, kind="stable")]

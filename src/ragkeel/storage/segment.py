"""In-memory search segment for one collection: BM25 postings and a dense vector matrix.

The SQLite tables are the source of truth; a segment is a read-optimised copy of one
collection at one ``generation`` (every committed write bumps it). A segment is immutable once
built, so searches need no lock: a newer generation is a *new* segment that shares the old
one's arrays (``refreshed``), so a replaced or deleted chunk is never returned — no ghost hits.

Layout: a ``SegmentBase`` (rows in rowid order, their postings and vectors; what the on-disk
cache stores) plus a delta of rows appended since, and an ``alive`` mask whose false entries
are tombstones of deleted rows. Appends grow the delta's buffers geometrically, so a write
costs O(rows written), not O(collection). ``compacted`` folds delta and tombstones into a new
base.

BM25 is Lucene's variant: idf = ln(1 + (N - df + 0.5) / (df + 0.5)) and
tf' = tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avgdl)). The postings keep raw tf and each
row its length; N, avgdl and df are computed over live rows only, so scores stay exactly those
of a segment rebuilt from the tables. df of a query term is its postings' live count (memoised
per segment). Dense search is exact: one float32 matrix-vector product per part (vectors are
L2-normalised, so the dot product is the cosine).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from ragkeel.errors import StorageError
from ragkeel.storage.postings import Postings

F32 = npt.NDArray[np.float32]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]
Hits = list[tuple[int, float]]
T = TypeVar("T", bound=np.generic)


@dataclass(frozen=True, slots=True)
class SegmentRows:
    """Raw rows as loaded from SQLite, ordered by chunk rowid."""

    rowids: I64
    chunk_ids: list[str]
    term_blobs: Sequence[bytes]
    tf_blobs: Sequence[bytes]
    lengths: npt.NDArray[np.int32]
    vectors: F32  # (n, d), may be (n, 0) when the collection has no vectors


@dataclass(frozen=True, slots=True)
class SegmentBase:
    """Rows in rowid order with their postings: the part a segment cache persists."""

    rowids: I64
    id_blob: U8  # UTF-8 chunk ids, concatenated
    id_offsets: I64  # n + 1 offsets into id_blob
    lengths: I32
    vectors: F32
    postings: Postings

    @classmethod
    def from_rows(cls, rows: SegmentRows) -> SegmentBase:
        blob, offsets = _id_table(rows.chunk_ids)
        return cls(
            rows.rowids.astype(np.int64, copy=False),
            blob,
            offsets,
            rows.lengths.astype(np.int32, copy=False),
            rows.vectors,
            Postings.from_blobs(rows.term_blobs, rows.tf_blobs, 0),
        )

    @property
    def size(self) -> int:
        return len(self.rowids)

    def chunk_id(self, position: int) -> str:
        start, end = self.id_offsets[position], self.id_offsets[position + 1]
        return bytes(self.id_blob[start:end]).decode()

    def select(self, keep: Mask | None, first_doc: int = 0) -> SegmentBase:
        """The rows where ``keep`` is true (all when None), numbered from ``first_doc``."""
        postings = self.postings.select(keep, first_doc)
        if keep is None:
            return SegmentBase(
                self.rowids, self.id_blob, self.id_offsets, self.lengths, self.vectors, postings
            )
        lens = np.diff(self.id_offsets)[keep]
        offsets = np.zeros(len(lens) + 1, np.int64)
        np.cumsum(lens, out=offsets[1:])
        gather = np.repeat(self.id_offsets[:-1][keep] - offsets[:-1], lens) + np.arange(offsets[-1])
        return SegmentBase(
            self.rowids[keep],
            self.id_blob[gather],
            offsets,
            self.lengths[keep],
            self.vectors[keep],
            postings,
        )

    def concat(self, other: SegmentBase) -> SegmentBase:
        return SegmentBase(
            np.concatenate([self.rowids, other.rowids]),
            np.concatenate([self.id_blob, other.id_blob]),
            np.concatenate([self.id_offsets[:-1], other.id_offsets + self.id_offsets[-1]]),
            np.concatenate([self.lengths, other.lengths]),
            np.concatenate([self.vectors, other.vectors]),
            self.postings.concat(other.postings),
        )


@dataclass(frozen=True, slots=True)
class _Delta:
    """Rows appended after the base. Buffers are shared between segment versions and only
    grown past ``size``, so an older version's view of them never changes."""

    size: int
    rowids: I64
    chunk_ids: npt.NDArray[np.object_]
    lengths: I32
    vectors: F32
    postings: Postings = field(default_factory=Postings.empty)

    @classmethod
    def empty(cls, dim: int) -> _Delta:
        return cls(
            0,
            np.zeros(0, np.int64),
            np.zeros(0, np.object_),
            np.zeros(0, np.int32),
            np.zeros((0, dim), np.float32),
        )

    def append(self, rows: SegmentRows, first_doc: int) -> _Delta:
        n = self.size
        return _Delta(
            n + len(rows.rowids),
            _grow(self.rowids, n, rows.rowids),
            _grow(self.chunk_ids, n, np.array(rows.chunk_ids, dtype=np.object_)),
            _grow(self.lengths, n, rows.lengths.astype(np.int32)),
            _grow(self.vectors, n, rows.vectors),
            self.postings.concat(Postings.from_blobs(rows.term_blobs, rows.tf_blobs, first_doc)),
        )

    def as_base(self, first_doc: int) -> SegmentBase:
        """These rows as a base numbered from 0 (their postings start at ``first_doc``)."""
        n, p = self.size, self.postings
        blob, offsets = _id_table([str(c) for c in self.chunk_ids[:n]])
        shifted = Postings(p.terms, p.starts, p.docs - np.int32(first_doc), p.tfs)
        return SegmentBase(
            self.rowids[:n], blob, offsets, self.lengths[:n], self.vectors[:n], shifted
        )


def _id_table(chunk_ids: Sequence[str]) -> tuple[U8, I64]:
    encoded = [c.encode() for c in chunk_ids]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, count=len(encoded)), out=offsets[1:])
    return np.frombuffer(b"".join(encoded), np.uint8), offsets


class Segment:
    """One collection at one generation; searches see only its live rows."""

    def __init__(
        self,
        base: SegmentBase,
        *,
        generation: int,
        uid: str,
        k1: float,
        b: float,
        delta: _Delta | None = None,
        alive: Mask | None = None,  # None: no tombstones
        live_length: int | None = None,
    ) -> None:
        self.base, self.generation, self.uid, self.k1, self.b = base, generation, uid, k1, b
        self._delta = delta if delta is not None else _Delta.empty(base.vectors.shape[1])
        self.size = base.size + self._delta.size
        self._alive = alive
        self.dead = 0 if alive is None else self.size - int(np.count_nonzero(alive))
        self.live = self.size - self.dead
        self._live_length = (
            int(base.lengths.sum(dtype=np.int64)) if live_length is None else live_length
        )
        self._norm: F32 | None = None
        self._rowids: I64 | None = None
        self._df: dict[int, int] = {}

    @classmethod
    def build(cls, rows: SegmentRows, *, generation: int, uid: str, k1: float, b: float) -> Segment:
        return cls(SegmentBase.from_rows(rows), generation=generation, uid=uid, k1=k1, b=b)

    @property
    def dim(self) -> int:
        return int(self.base.vectors.shape[1])

    @property
    def delta_size(self) -> int:
        return self._delta.size

    @property
    def max_rowid(self) -> int:
        """Highest rowid this segment has seen; any newer row of the collection is above it."""
        if self._delta.size:
            return int(self._delta.rowids[self._delta.size - 1])
        return int(self.base.rowids[-1]) if self.base.size else 0

    @property
    def rowids(self) -> I64:
        if self._rowids is None:
            self._rowids = (
                np.concatenate([self.base.rowids, self._delta.rowids[: self._delta.size]])
                if self._delta.size
                else self.base.rowids
            )
        return self._rowids

    def chunk_id(self, position: int) -> str:
        if position < self.base.size:
            return self.base.chunk_id(position)
        return str(self._delta.chunk_ids[position - self.base.size])

    # -- search ---------------------------------------------------------------------------------
    def bm25(self, term_ids: Sequence[int], k: int, mask: Mask | None) -> Hits:
        """Top-``k`` (position, score) for a bag of query term ids (repeats count)."""
        if self.live == 0:
            return []
        scores = np.zeros(self.size, dtype=np.float32)
        weights: dict[int, list[tuple[I32, F32]]] = {}
        for term in term_ids:
            if term not in weights:
                weights[term] = self._term_weights(term)
            for docs, w in weights[term]:
                scores[docs] += w
        if not weights:
            return []
        # every BM25 weight is > 0 (idf > 0, tf >= 1), so a positive score is a match
        return _top_k(scores, self._valid(mask, scores > 0), k)

    def _term_weights(self, term: int) -> list[tuple[I32, F32]]:
        parts = [(p, *p.span(term)) for p in (self.base.postings, self._delta.postings)]
        parts = [(p, lo, hi) for p, lo, hi in parts if hi > lo]
        df = self._df.get(term)
        if df is None:
            alive = self._alive
            df = sum(
                hi - lo if alive is None else int(np.count_nonzero(alive[p.docs[lo:hi]]))
                for p, lo, hi in parts
            )
            self._df[term] = df
        if df == 0:
            return []
        idf = float(np.log1p((self.live - df + 0.5) / (df + 0.5)))
        norm, scale = self._norms(), idf * (self.k1 + 1.0)
        out = []
        for p, lo, hi in parts:
            docs, tf = p.docs[lo:hi], p.tfs[lo:hi].astype(np.float32)
            out.append((docs, scale * tf / (tf + norm[docs])))
        return out

    def _norms(self) -> F32:
        """k1 * (1 - b + b * len / avgdl) per position, with avgdl over live rows."""
        if self._norm is None:
            lengths = self.base.lengths
            if self._delta.size:
                lengths = np.concatenate([lengths, self._delta.lengths[: self._delta.size]])
            avgdl = self._live_length / self.live if self._live_length > 0 else 1.0
            norm = self.k1 * (1.0 - self.b + self.b * lengths.astype(np.float32) / avgdl)
            self._norm = norm.astype(np.float32)
        return self._norm

    def dense(self, query: F32, k: int, mask: Mask | None) -> Hits:
        """Top-``k`` (position, cosine); a query of another dimension than the rows' is a
        ``StorageError`` (a segment without vectors has nothing to compare)."""
        if self.live == 0 or self.dim == 0:
            return []
        if query.shape != (self.dim,):
            raise StorageError(
                f"a query vector of shape {query.shape} against stored vectors of"
                f" {self.dim} dimensions",
                hint="embed the query with the embedding model the collection was indexed"
                " with (`ragkeel collections list` shows it)",
            )
        scores = np.asarray(self.base.vectors @ query, dtype=np.float32)
        if self._delta.size:
            tail = self._delta.vectors[: self._delta.size] @ query
            scores = np.concatenate([scores, tail.astype(np.float32)])
        return _top_k(scores, self._valid(mask, None), k)

    def _valid(self, mask: Mask | None, hit: Mask | None) -> Mask | None:
        valid = hit
        for m in (self._alive, mask):
            if m is not None:
                valid = m if valid is None else valid & m
        return valid

    def mask_for(self, allowed_rowids: I64) -> Mask:
        """Boolean mask over positions for the given (any order) chunk rowids."""
        found = self._positions_of(allowed_rowids)
        mask = np.zeros(self.size, np.bool_)
        mask[found] = True
        return mask

    def holds_live(self, rowid: int) -> bool:
        found = self._positions_of(np.array([rowid], np.int64))
        return bool(len(found)) and (self._alive is None or bool(self._alive[found[0]]))

    def _positions_of(self, rowids: I64) -> I64:
        """Positions of those of ``rowids`` that the segment holds (dead or alive)."""
        held = self.rowids
        pos = np.searchsorted(held, rowids)
        ok = pos < len(held)
        ok[ok] = held[pos[ok]] == rowids[ok]
        return pos[ok].astype(np.int64)

    # -- change ---------------------------------------------------------------------------------
    def refreshed(self, added: SegmentRows, deleted_rowids: I64, generation: int) -> Segment:
        """This segment with ``deleted_rowids`` tombstoned and ``added`` appended (rowids above
        ``max_rowid``). Deleted rowids it never held (added and deleted since) are ignored."""
        if len(added.rowids) and int(added.rowids[0]) <= self.max_rowid:
            raise ValueError(f"rows must be appended above rowid {self.max_rowid}")
        alive, live_length = self._alive, self._live_length
        positions = self._positions_of(np.asarray(deleted_rowids, np.int64))
        if len(positions):
            alive = np.ones(self.size, np.bool_) if alive is None else alive.copy()
            positions = positions[alive[positions]]
            alive[positions] = False
            in_base = positions < self.base.size
            live_length -= int(self.base.lengths[positions[in_base]].sum(dtype=np.int64))
            tail = positions[~in_base] - self.base.size
            live_length -= int(self._delta.lengths[tail].sum(dtype=np.int64))
        delta = self._delta
        if len(added.rowids):
            delta = delta.append(added, first_doc=self.size)
            live_length += int(added.lengths.sum(dtype=np.int64))
            if alive is not None:
                alive = np.concatenate([alive, np.ones(len(added.rowids), np.bool_)])
        return Segment(
            self.base,
            generation=generation,
            uid=self.uid,
            k1=self.k1,
            b=self.b,
            delta=delta,
            alive=alive,
            live_length=live_length,
        )

    def compacted(self) -> Segment:
        """The same live rows as one base: no delta, no tombstones."""
        nb, alive = self.base.size, self._alive
        base = self.base if alive is None else self.base.select(alive[:nb])
        if self._delta.size:
            tail = self._delta.as_base(nb)
            base = base.concat(tail.select(None if alive is None else alive[nb:], base.size))
        return Segment(base, generation=self.generation, uid=self.uid, k1=self.k1, b=self.b)


def _grow(buffer: npt.NDArray[T], used: int, values: npt.NDArray[T]) -> npt.NDArray[T]:
    need = used + len(values)
    if need > len(buffer):
        grown = np.empty((max(need, 2 * len(buffer), 64), *buffer.shape[1:]), buffer.dtype)
        grown[:used] = buffer[:used]
        buffer = grown
    buffer[used:need] = values
    return buffer


def _top_k(scores: F32, valid: Mask | None, k: int) -> Hits:
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

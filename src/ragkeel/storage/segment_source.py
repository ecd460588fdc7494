"""Keeps each collection's in-memory ``Segment`` in step with the SQLite tables.

When a collection's generation has moved since its segment was made, the segment is
refreshed rather than rebuilt: rows above its ``max_rowid`` are read and appended (rowids only
grow: ``AUTOINCREMENT``), and rowids logged in ``chunk_deletions`` since its generation are
tombstoned. Both reads and the generation come from one read transaction, so a segment is
always an exact snapshot. When appended rows or tombstones pass a share of the segment
(``CompactionPolicy``), it is compacted in memory and saved to the segment cache; a segment
that is older than the deletion log reaches back (``deletions_floor``), of another
incarnation of the collection (``uid``) or of another vector dimension is rebuilt from the
tables.

A new process starts from the cache when one exists: it is used as is when its generation is
current, or refreshed as above when it is older, and in both cases its row count and highest
rowid must match the table's, otherwise it is ignored (logged) and the segment rebuilt.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ragkeel.errors import StorageError
from ragkeel.storage.segment import F32, Segment, SegmentRows
from ragkeel.storage.segment_cache import SegmentCache

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    delta_fraction: float = 0.1  # appended rows beyond this share of the base
    dead_fraction: float = 0.2  # tombstones beyond this share of all rows
    min_rows: int = 1_000  # ... and never for fewer changed rows than this

    def due(self, seg: Segment) -> bool:
        return seg.delta_size > max(self.delta_fraction * seg.base.size, self.min_rows) or (
            seg.dead > max(self.dead_fraction * seg.size, self.min_rows)
        )


@dataclass(frozen=True, slots=True)
class _State:
    generation: int
    dim: int
    uid: str
    deletions_floor: int


class SqliteSegmentSource:
    def __init__(
        self,
        conn: sqlite3.Connection,
        lock: threading.RLock,
        *,
        k1: float,
        b: float,
        cache: SegmentCache | None,
        policy: CompactionPolicy | None = None,
    ) -> None:
        self._conn, self._lock, self._k1, self._b = conn, lock, k1, b
        self._cache = cache
        self._policy = policy or CompactionPolicy()
        self._segments: dict[str, Segment] = {}
        # how segments were obtained: build, refresh, compact, cache_hit, cache_miss
        self.events: Counter[str] = Counter()

    def get(self, collection: str) -> Segment:
        with self._lock:
            self._conn.execute("BEGIN")  # one snapshot: the generation and the rows agree
            try:
                seg, save = self._current(collection)
            finally:
                self._conn.execute("COMMIT")
            self._segments[collection] = seg
        if save and self._cache is not None:
            self._cache.save(collection, seg.uid, seg.generation, seg.base)
        return seg

    def forget(self, collection: str) -> None:
        with self._lock:
            self._segments.pop(collection, None)
        if self._cache is not None:
            self._cache.drop(collection)

    # -- policy ---------------------------------------------------------------------------------
    def _current(self, collection: str) -> tuple[Segment, bool]:
        """The segment for the current generation, and whether to save it to the cache."""
        state = self._state(collection)
        seg = self._segments.get(collection)
        if state is None:  # no such collection (yet): an empty segment, not worth caching
            if seg is None or seg.uid != "":
                seg = self._build(collection, _State(-1, 0, "", 0))
            return seg, False
        if seg is not None and seg.uid == state.uid and seg.dim == state.dim:
            if seg.generation == state.generation:
                return seg, False
            if self._refreshable(seg, state):
                return self._maybe_compact(self._refresh(seg, collection, state))
        elif self._cache is not None:
            cached = self._from_cache(collection, state)
            if cached is not None:
                return self._maybe_compact(cached)
        return self._build(collection, state), True

    def _maybe_compact(self, seg: Segment) -> tuple[Segment, bool]:
        if not self._policy.due(seg):
            return seg, False
        self.events["compact"] += 1
        return seg.compacted(), True

    @staticmethod
    def _refreshable(seg: Segment, state: _State) -> bool:
        return state.deletions_floor <= seg.generation < state.generation

    def _from_cache(self, collection: str, state: _State) -> Segment | None:
        assert self._cache is not None
        cached = self._cache.load(collection)
        if cached is None:
            self.events["cache_miss"] += 1
            return None
        seg = Segment(
            cached.base, generation=cached.generation, uid=cached.uid, k1=self._k1, b=self._b
        )
        if (
            seg.uid != state.uid
            or seg.dim != state.dim
            or (seg.generation != state.generation and not self._refreshable(seg, state))
        ):
            self.events["cache_miss"] += 1  # another incarnation, another model, or too old
            return None
        if seg.generation != state.generation:
            seg = self._refresh(seg, collection, state)
        count, max_rowid = self._conn.execute(
            "SELECT count(*), max(rowid) FROM chunks WHERE collection=?", (collection,)
        ).fetchone()
        if seg.live != count or (count and not seg.holds_live(int(max_rowid))):
            logger.warning(
                "segment cache of %r (generation %d) does not match the table: %d rows against "
                "%d; rebuilding",
                collection,
                cached.generation,
                seg.live,
                count,
            )
            self.events["cache_miss"] += 1
            return None
        self.events["cache_hit"] += 1
        return seg

    # -- reading the tables ---------------------------------------------------------------------
    def _state(self, collection: str) -> _State | None:
        row = self._conn.execute(
            "SELECT generation, dimension, uid, deletions_floor FROM collections WHERE name=?",
            (collection,),
        ).fetchone()
        return _State(int(row[0]), int(row[1]), str(row[2]), int(row[3])) if row else None

    def _build(self, collection: str, state: _State) -> Segment:
        self.events["build"] += 1
        rows = self._all_rows(collection, state.dim)
        return Segment.build(
            rows, generation=state.generation, uid=state.uid, k1=self._k1, b=self._b
        )

    def _refresh(self, seg: Segment, collection: str, state: _State) -> Segment:
        self.events["refresh"] += 1
        deleted = self._conn.execute(
            "SELECT rowid FROM chunk_deletions WHERE collection=? AND generation > ?",
            (collection, seg.generation),
        ).fetchall()
        # `+collection` keeps SQLite on the rowid range instead of the collection index
        data = self._conn.execute(
            "SELECT c.rowid, c.id, t.terms, t.tfs, t.length, v.vector FROM chunks c "
            "JOIN chunk_terms t ON t.chunk_rowid=c.rowid "
            "JOIN chunk_vectors v ON v.chunk_rowid=c.rowid "
            "WHERE c.rowid > ? AND +c.collection = ? ORDER BY c.rowid",
            (seg.max_rowid, collection),
        ).fetchall()
        added = SegmentRows(
            rowids=np.fromiter((r[0] for r in data), np.int64, count=len(data)),
            chunk_ids=[r[1] for r in data],
            term_blobs=[r[2] for r in data],
            tf_blobs=[r[3] for r in data],
            lengths=np.fromiter((r[4] for r in data), np.int32, count=len(data)),
            vectors=_vectors([r[5] for r in data], state.dim, collection),
        )
        gone = np.fromiter((r[0] for r in deleted), np.int64, count=len(deleted))
        return seg.refreshed(added, gone, state.generation)

    def _all_rows(self, collection: str, dim: int) -> SegmentRows:
        # three ordered scans are ~2x faster than one join sorted by rowid (no temp b-tree)
        ids = self._conn.execute(
            "SELECT rowid, id FROM chunks WHERE collection=? ORDER BY rowid", (collection,)
        ).fetchall()
        scope = "chunk_rowid IN (SELECT rowid FROM chunks WHERE collection=?)"
        terms = self._conn.execute(
            f"SELECT chunk_rowid, terms, tfs, length FROM chunk_terms WHERE {scope} "
            "ORDER BY chunk_rowid",
            (collection,),
        ).fetchall()
        vecs = self._conn.execute(
            f"SELECT chunk_rowid, vector FROM chunk_vectors WHERE {scope} ORDER BY chunk_rowid",
            (collection,),
        ).fetchall()
        rowids = np.fromiter((r[0] for r in ids), np.int64, count=len(ids))
        t_rowids = np.fromiter((r[0] for r in terms), np.int64, count=len(terms))
        v_rowids = np.fromiter((r[0] for r in vecs), np.int64, count=len(vecs))
        if not (np.array_equal(rowids, t_rowids) and np.array_equal(rowids, v_rowids)):
            # chunks without postings or vector (see check_integrity) are not searchable
            both = np.intersect1d(np.intersect1d(rowids, t_rowids), v_rowids)
            ids = [r for r, keep in zip(ids, np.isin(rowids, both), strict=True) if keep]
            terms = [r for r, keep in zip(terms, np.isin(t_rowids, both), strict=True) if keep]
            vecs = [r for r, keep in zip(vecs, np.isin(v_rowids, both), strict=True) if keep]
            rowids = both
        return SegmentRows(
            rowids=rowids,
            chunk_ids=[r[1] for r in ids],
            term_blobs=[r[1] for r in terms],
            tf_blobs=[r[2] for r in terms],
            lengths=np.fromiter((r[3] for r in terms), np.int32, count=len(terms)),
            vectors=_vectors([r[1] for r in vecs], dim, collection),
        )


def _vectors(blobs: list[bytes], dim: int, collection: str) -> F32:
    n = len(blobs)
    if dim == 0:  # a collection without vectors
        return np.zeros((n, 0), np.float32)
    flat = np.frombuffer(b"".join(blobs), dtype=np.float32)
    if len(flat) != n * dim:
        raise StorageError(
            f"collection {collection!r}: stored vectors do not all have {dim} dimensions",
            hint="run `ragkeel doctor`, or re-ingest the collection",
        )
    return flat.reshape(n, dim)

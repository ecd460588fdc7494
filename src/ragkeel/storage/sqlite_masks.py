"""Row masks of the SQLite store: which rows of a segment a search may score, for a filter
(sources, document ids, metadata) and an access scope's ACL, resolved by SQL and cached.

A mask is resolved once per segment version (collection key, uid, generation), filter and
principals, then reused: a filter or an ACL repeats on every query, and the SQL costs ~100 ms
at 100k chunks while a mask is free to reuse (segments are immutable). Every write — an ACL
change included — makes a new generation, so no cached mask outlives what it was made from.
No mask at all (None: every row) when neither is needed: the tenant is chosen by the segments
searched, a collection filter by the key, and a scope with every principal, or a collection
where no document has an ACL, needs no ACL mask.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from ragkeel.storage.filters import Filter, acl_sql, to_sql
from ragkeel.storage.segment import Segment
from ragkeel.types import AccessScope

Mask = npt.NDArray[np.bool_]
CACHE_SIZE = 64


class SqliteRowMasks:
    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock) -> None:
        self._conn, self._lock = conn, lock
        self._masks: OrderedDict[tuple[object, ...], Mask] = OrderedDict()

    def visible(
        self, key: str, seg: Segment, flt: Filter | None, scope: AccessScope
    ) -> Mask | None:
        """The rows of ``seg`` (the collection under ``key``) that pass ``flt`` and
        ``scope``'s ACL; None when every row does."""
        narrow = flt if flt is not None and _needs_sql(flt) else None
        acl = None if scope.all_principals or not self._restricted(key) else scope
        if narrow is None and acl is None:
            return None
        cache_key = (
            key,
            seg.uid,
            seg.generation,
            _filter_key(narrow) if narrow is not None else None,
            tuple(sorted(acl.principals)) if acl is not None else None,
        )
        with self._lock:
            cached = self._masks.get(cache_key)
            if cached is not None:
                self._masks.move_to_end(cache_key)
                return cached
        mask = seg.mask_for(self._allowed_rowids(key, narrow, acl))
        with self._lock:
            self._masks[cache_key] = mask
            while len(self._masks) > CACHE_SIZE:
                self._masks.popitem(last=False)
        return mask

    def _restricted(self, key: str) -> bool:
        """Whether any document of the collection under ``key`` has an ACL."""
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM document_principals WHERE collection=? LIMIT 1", (key,)
            ).fetchone()
        return row is not None

    def _allowed_rowids(
        self, key: str, flt: Filter | None, acl: AccessScope | None
    ) -> npt.NDArray[np.int64]:
        # the filter's collection is a name, already resolved to ``key`` by the caller
        where, params = to_sql(dataclasses.replace(flt, collection=None) if flt else None, "c")
        acl_where, acl_params = acl_sql(acl, "c") if acl is not None else ("1", [])
        with self._lock:
            rows = self._conn.execute(
                f"SELECT c.rowid FROM chunks c WHERE c.collection=? AND {where} AND {acl_where}",
                (key, *params, *acl_params),
            )
            return np.fromiter((r[0] for r in rows), np.int64)


def _needs_sql(flt: Filter) -> bool:
    return bool(flt.sources or flt.document_ids or flt.metadata)


def _filter_key(flt: Filter) -> tuple[object, ...]:
    meta = tuple(
        sorted((k, tuple(v) if isinstance(v, list | tuple) else v) for k, v in flt.metadata.items())
    )
    return (flt.sources, flt.document_ids, meta)

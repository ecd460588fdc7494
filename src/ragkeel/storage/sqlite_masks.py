"""Row masks of the SQLite store: which rows of a segment a search may score, for a filter
(sources, document ids, metadata) and an access scope's ACL, resolved by SQL and cached.

Each mask is resolved once per segment version (collection key, uid, generation) and filter,
or principals, then reused: a filter or an ACL repeats on every query, and a filter's SQL costs
~100 ms at 100k chunks while a mask is free to reuse (segments are immutable). Every write — an
ACL change included — makes a new generation, so no cached mask outlives what it was made from.
The ACL mask is resolved from the other side: the rows of the restricted documents the scope
may not see, found through ``document_principals`` and the chunks' document index, so it costs
what the restricted documents hold, whatever the collection's size. Filter and ACL masks are
cached apart and ANDed per search.
No mask at all (None: every row) when neither is needed: the tenant is chosen by the segments
searched, a collection filter by the key, and a scope with every principal, or a collection
where no document has an ACL, needs no ACL mask.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ragkeel.storage.filters import Filter, to_sql
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
        version = (key, seg.uid, seg.generation)
        masks = []
        if flt is not None and _needs_sql(flt):
            masks.append(
                self._cached(
                    (*version, "filter", _filter_key(flt)),
                    lambda: seg.mask_for(self._filtered_rowids(key, flt)),
                )
            )
        if not scope.all_principals and self._restricted(key):
            names = tuple(sorted(scope.principals))
            masks.append(
                self._cached(
                    (*version, "acl", names), lambda: ~seg.mask_for(self._hidden_rowids(key, names))
                )
            )
        if len(masks) < 2:
            return masks[0] if masks else None
        return masks[0] & masks[1]

    def _cached(self, cache_key: tuple[object, ...], make: Callable[[], Mask]) -> Mask:
        with self._lock:
            cached = self._masks.get(cache_key)
            if cached is not None:
                self._masks.move_to_end(cache_key)
                return cached
        mask = make()
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

    def _filtered_rowids(self, key: str, flt: Filter) -> npt.NDArray[np.int64]:
        # the filter's collection is a name, already resolved to ``key`` by the caller
        where, params = to_sql(dataclasses.replace(flt, collection=None), "c")
        with self._lock:
            rows = self._conn.execute(
                f"SELECT c.rowid FROM chunks c WHERE c.collection=? AND {where}", (key, *params)
            )
            return np.fromiter((r[0] for r in rows), np.int64)

    def _hidden_rowids(self, key: str, principals: tuple[str, ...]) -> npt.NDArray[np.int64]:
        """Rows of documents whose ACL names none of ``principals``: found from the ACL table
        through the chunks' document index, so the cost follows the restricted documents, not
        the collection's size."""
        having = f"HAVING max(p.principal IN ({','.join('?' * len(principals))})) = 0"
        hidden = (
            "SELECT p.document_id FROM document_principals p WHERE p.collection=? "
            f"GROUP BY p.document_id {having if principals else ''}"
        )
        with self._lock:
            rows = self._conn.execute(
                f"SELECT c.rowid FROM chunks c WHERE c.collection=? AND c.document_id IN ({hidden})",
                (key, key, *principals),
            )
            return np.fromiter((r[0] for r in rows), np.int64)


def _needs_sql(flt: Filter) -> bool:
    return bool(flt.sources or flt.document_ids or flt.metadata)


def _filter_key(flt: Filter) -> tuple[object, ...]:
    meta = tuple(
        sorted((k, tuple(v) if isinstance(v, list | tuple) else v) for k, v in flt.metadata.items())
    )
    return (flt.sources, flt.document_ids, meta)

"""The two search indexes of ``PostgresDocumentStore``, both computed in the database with the
filter and the ACL inside the same query (``filters.py``), one query per collection of the
scope's tenant (each collection has its own statistics and vector index), merged by score.

Keyword: BM25 over the ``postings`` table, the formula of the SQLite segments (Lucene's:
idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf' = tf (k1 + 1) / (tf + k1 (1 - b + b len /
avgdl)), a repeated query term counted again) with the same analyzer (``storage/analyzer.py``,
the query analysed in each collection's language, issue 15) and the same statistics — N and avgdl of the collection's live chunks (``collections``
statistics), df of the term in the collection — so scores equal SQLite's up to float32
rounding. Ties: score descending, then insertion order.

Dense: cosine distance (``<=>``) over ``embedding::vector(dim)``. A collection of at most
``exact_max_rows`` chunks, or a filter/ACL that leaves at most that many, is scanned exactly
(a different SQL expression than the index's, so neither the planner nor a prepared plan can
use the index). Above it the collection's HNSW index answers with ``hnsw.ef_search`` (set for each pooled
connection's session; a ``k`` above it or a changed value is set for one transaction, ``SET
LOCAL``) and pgvector's iterative index scan (``relaxed_order``), which
keeps walking the graph until ``k`` rows pass the filter; when it stops short
(``hnsw.max_scan_tuples``) while more rows match, the exact scan answers instead, so a
filtered search never returns fewer than the ``k`` visible hits that exist.
"""

from __future__ import annotations

from collections import Counter
from contextlib import AbstractContextManager
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import psycopg

from ragkeel.errors import StorageError
from ragkeel.storage.analyzer import analyzer_for
from ragkeel.storage.filters import Filter
from ragkeel.storage.postgres.filters import where
from ragkeel.storage.tenancy import scope_or_default
from ragkeel.types import AccessScope, ScoredChunk

F32 = npt.NDArray[np.float32]
Hit = tuple[float, int, int, str]  # score, collection order, chunk pk, chunk id


class CollectionInfo(Protocol):
    id: int
    dimension: int
    chunk_count: int
    language: str


class SearchSource(Protocol):
    """What the indexes need from the store."""

    def search_collections(
        self, tenant: str, collection: str | None, model: str | None = None
    ) -> list[Any]: ...

    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]: ...


# MATERIALIZED: inlined, the df subquery would run again for every posting joined (100x slower)
_BM25 = """
WITH q AS MATERIALIZED (
    SELECT t.term, t.qtf,
           (SELECT count(*) FROM postings p WHERE p.collection_id = %s AND p.term = t.term) AS df
    FROM unnest(%s::text[], %s::int[]) AS t(term, qtf)
), w AS MATERIALIZED (
    SELECT q.term, q.qtf * ln(1 + (k.chunk_count - q.df + 0.5) / (q.df + 0.5)) AS idf,
           CASE WHEN k.total_length > 0 THEN k.total_length::float8 / k.chunk_count
                ELSE 1.0 END AS avgdl
    FROM q CROSS JOIN collections k WHERE k.id = %s AND q.df > 0
)
SELECT c.pk, c.id,
       sum(w.idf * p.tf * (%s + 1) / (p.tf + %s * (1 - %s + %s * c.length / w.avgdl))) AS score
FROM w JOIN postings p ON p.collection_id = %s AND p.term = w.term
JOIN chunks c ON c.pk = p.chunk_pk
WHERE {where}
GROUP BY c.pk, c.id
ORDER BY score DESC, c.pk
LIMIT %s
"""


def _ranked(hits: list[Hit], k: int) -> list[ScoredChunk]:
    hits.sort(key=lambda h: (-h[0], h[1], h[2]))
    return [ScoredChunk(cid, score, i + 1) for i, (score, _, _, cid) in enumerate(hits[:k])]


class PostgresKeywordIndex:
    def __init__(self, store: SearchSource, *, k1: float = 1.2, b: float = 0.75) -> None:
        self._store, self.k1, self.b = store, k1, b

    def search(
        self,
        query: str,
        k: int,
        flt: Filter | None = None,
        *,
        scope: AccessScope | None = None,
    ) -> list[ScoredChunk]:
        if k <= 0:
            return []
        access = scope_or_default(scope)
        cond, params = where(flt, access)
        sql = _BM25.format(where=cond)
        by_language: dict[str, Counter[str]] = {}
        hits: list[Hit] = []
        cols = self._store.search_collections(access.tenant, flt.collection if flt else None)
        with self._store.connection() as conn:
            for order, col in enumerate(cols):
                if col.language not in by_language:
                    by_language[col.language] = analyzer_for(col.language).term_frequencies(query)
                terms = by_language[col.language]
                if col.chunk_count == 0 or not terms:
                    continue
                words, counts = list(terms), list(terms.values())
                k1, b = self.k1, self.b
                rows = conn.execute(
                    sql,
                    (col.id, words, counts, col.id, k1, k1, b, b, col.id, *params, k),
                ).fetchall()
                hits.extend((float(r[2]), order, int(r[0]), str(r[1])) for r in rows)
        return _ranked(hits, k)


class PostgresVectorIndex:
    def __init__(
        self, store: SearchSource, *, ef_search: int = 200, exact_max_rows: int = 10_000
    ) -> None:
        self._store, self.ef_search, self.exact_max_rows = store, ef_search, exact_max_rows
        self._session_ef = ef_search  # what every pooled connection's session has

    def search(
        self,
        vector: F32,
        k: int,
        flt: Filter | None = None,
        *,
        scope: AccessScope | None = None,
        model: str | None = None,
    ) -> list[ScoredChunk]:
        if k <= 0:
            return []
        query = np.asarray(vector, dtype=np.float32)
        access = scope_or_default(scope)
        cond, params = where(flt, access)
        hits: list[Hit] = []
        cols = self._store.search_collections(access.tenant, flt.collection if flt else None, model)
        with self._store.connection() as conn:
            for order, col in enumerate(cols):
                if col.chunk_count == 0 or col.dimension == 0:
                    continue
                if query.shape != (col.dimension,):
                    raise StorageError(
                        f"a query vector of shape {query.shape} against stored vectors of"
                        f" {col.dimension} dimensions",
                        hint="embed the query with the embedding model the collection was "
                        "indexed with (`ragkeel collections list` shows it)",
                    )
                rows = self._collection(conn, col, query, k, cond, params)
                hits.extend((1.0 - float(d), order, pk, cid) for pk, cid, d in rows)
        return _ranked(hits, k)

    def _collection(
        self,
        conn: psycopg.Connection[Any],
        col: CollectionInfo,
        query: F32,
        k: int,
        cond: str,
        params: list[object],
    ) -> list[tuple[int, str, float]]:
        matching = col.chunk_count
        if cond != "TRUE" and matching > self.exact_max_rows:
            row = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM chunks c WHERE c.collection_id = %s "
                f"AND {cond} LIMIT %s) s",
                (col.id, *params, self.exact_max_rows + 1),
            ).fetchone()
            matching = int(row[0]) if row else 0
        if matching == 0:
            return []
        if matching > self.exact_max_rows:
            rows = self.approximate(conn, col, query, k, cond, params)
            if len(rows) >= min(k, matching):
                return rows
        return self.exact(conn, col, query, k, cond, params)

    def approximate(
        self,
        conn: psycopg.Connection[Any],
        col: CollectionInfo,
        query: F32,
        k: int,
        cond: str,
        params: list[object],
    ) -> list[tuple[int, str, float]]:
        """The collection's HNSW index at ``ef_search`` (at least ``k``), filtered during the
        walk by pgvector's iterative scan."""
        dim, cid = int(col.dimension), int(col.id)
        sql = (
            f"SELECT c.pk, c.id, c.embedding::vector({dim}) <=> %s::vector({dim}) AS d "
            f"FROM chunks c WHERE c.collection_id = {cid} AND vector_dims(c.embedding) = {dim} "
            f"AND {cond} ORDER BY d LIMIT %s"
        )
        ef = max(self.ef_search, k)
        if ef == self._session_ef:
            rows = conn.execute(sql, (query, *params, k)).fetchall()
        else:  # another ef_search for this one search: SET LOCAL in a transaction
            with conn.transaction():
                conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef),))
                rows = conn.execute(sql, (query, *params, k)).fetchall()
        out = [(int(r[0]), str(r[1]), float(r[2])) for r in rows]
        out.sort(key=lambda r: (r[2], r[0]))  # relaxed order: sort what came back
        return out

    def exact(
        self,
        conn: psycopg.Connection[Any],
        col: CollectionInfo,
        query: F32,
        k: int,
        cond: str,
        params: list[object],
    ) -> list[tuple[int, str, float]]:
        """Every matching row compared (the index's expression is not used)."""
        rows = conn.execute(
            "SELECT c.pk, c.id, c.embedding <=> %s AS d FROM chunks c "
            f"WHERE c.collection_id = %s AND c.embedding IS NOT NULL AND {cond} "
            "ORDER BY d, c.pk LIMIT %s",
            (query, col.id, *params, k),
        ).fetchall()
        return [(int(r[0]), str(r[1]), float(r[2])) for r in rows]

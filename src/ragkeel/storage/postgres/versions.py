"""Versions of a collection's vector index in the PostgreSQL store (issue 13, schema version 3),
the same model as SQLite's (``storage/sqlite_versions.py``).

The active version is ``collections.index_version``; its vectors are ``chunks.embedding``, the
ones every search reads. A version under construction is a row of ``index_builds`` and its
vectors live in ``version_vectors`` by (chunk pk, version): no search reads that table. Writes
go on during the build with the active model; their new chunks are simply pending, and a
deleted chunk takes its new vector with it (``ON DELETE CASCADE``).

The switch (``activate``) is one transaction:

- it takes the collection row ``FOR UPDATE``. Every writer takes it ``FOR KEY SHARE`` when it
  checks the collection's model (``store._ensure_collection``), so the switch waits for the
  writes under way to commit and writes that start later wait for the switch, then find the
  new model (and refuse vectors of the old one). So no chunk of the old model can land after
  the completeness check;
- it embeds the few chunks written since the builder's last pass (no more can arrive), checks
  every chunk has a vector in the new version, copies them into ``chunks.embedding``
  (the old ones are overwritten: dropped), deletes the build and records the new model,
  dimension and version. Searches keep reading the old rows (MVCC) until the commit, then the
  new ones: never a mix;
- with a new dimension the collection's HNSW index (an expression over
  ``embedding::vector(dim)``) is dropped and built again inside the transaction. That takes an
  exclusive lock on ``chunks``: searches wait for the switch (they still never see a mix). A
  switch to a model of the same dimension needs no DDL and blocks no search.

Every function runs on the caller's connection, inside its transaction where it writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from ragkeel.errors import StorageError
from ragkeel.storage.base import EmbedFn, IndexVersion, PendingChunk
from ragkeel.types import Chunk

Db = psycopg.Connection[Any]

# a chunk row ``c`` of the collection (first parameter) without a vector in the version (second)
_MISSING = (
    "c.collection_id = %s AND NOT EXISTS (SELECT 1 FROM version_vectors v "
    "WHERE v.chunk_pk = c.pk AND v.version = %s)"
)


def active(db: Db, cid: int) -> IndexVersion | None:
    row = db.execute(
        "SELECT index_version, embedding_model, dimension FROM collections WHERE id=%s", (cid,)
    ).fetchone()
    return IndexVersion(int(row[0]), row[1], int(row[2])) if row else None


def building(db: Db, cid: int) -> IndexVersion | None:
    row = db.execute(
        "SELECT version, embedding_model, dimension FROM index_builds WHERE collection_id=%s",
        (cid,),
    ).fetchone()
    return IndexVersion(int(row[0]), row[1], int(row[2])) if row else None


def begin(db: Db, cid: int, model: str, dimension: int) -> IndexVersion:
    if dimension < 1:
        raise StorageError(f"a vector index needs at least one dimension, not {dimension}")
    db.execute("SELECT 1 FROM collections WHERE id=%s FOR UPDATE", (cid,))
    current = building(db, cid)
    if current is not None:
        if (current.embedding_model, current.dimension) == (model, dimension):
            return current
        abandon(db, cid, current.version)
    live = active(db, cid)
    if live is None:
        raise StorageError(f"no collection with id {cid}")
    version = max(live.version, current.version if current else 0) + 1
    db.execute(
        "INSERT INTO index_builds(collection_id, version, embedding_model, dimension, "
        "started_at) VALUES (%s,%s,%s,%s,%s)",
        (cid, version, model, dimension, time.time()),
    )
    return IndexVersion(version, model, dimension)


def pending(
    db: Db,
    cid: int,
    version: int,
    limit: int,
    after: int,
    columns: str,
    chunk_of: Callable[[Sequence[Any]], Chunk],
) -> list[PendingChunk]:
    """Chunks above pk ``after`` without a vector in ``version`` (the one being built), by pk;
    ``columns`` over ``chunks c JOIN collections k`` make the ``Chunk`` (``chunk_of``)."""
    build = building(db, cid)
    if build is None or build.version != version:
        return []
    rows = db.execute(
        f"SELECT c.pk, {columns} FROM chunks c JOIN collections k ON k.id = c.collection_id "
        f"WHERE c.pk > %s AND {_MISSING} ORDER BY c.pk LIMIT %s",
        (after, cid, version, limit),
    ).fetchall()
    return [PendingChunk(int(r[0]), chunk_of(r[1:])) for r in rows]


def put(
    db: Db, cid: int, version: int, refs: Sequence[int], vectors: npt.NDArray[np.float32]
) -> int:
    build = building(db, cid)
    if build is None or build.version != version:
        raise StorageError(
            f"version {version} of this collection is not being built",
            hint="it was switched to or abandoned; start again with `ragkeel collections reembed`",
        )
    if len(refs) != len(vectors) or (len(refs) and vectors.shape[1:] != (build.dimension,)):
        raise StorageError(
            f"{len(refs)} chunks but vectors of shape {vectors.shape}; version {version} has "
            f"{build.dimension} dimensions"
        )
    rows = db.execute(
        "INSERT INTO version_vectors(chunk_pk, version, embedding) "
        "SELECT c.pk, %s, v.embedding::vector FROM chunks c "
        "JOIN unnest(%s::bigint[], %s::text[]) AS v(pk, embedding) ON v.pk = c.pk "
        "WHERE c.collection_id = %s "
        "ON CONFLICT (chunk_pk, version) DO UPDATE SET embedding = EXCLUDED.embedding",
        (
            version,
            [int(r) for r in refs],
            [_text(vec) for vec in vectors],
            cid,
        ),
    )
    return int(rows.rowcount)


def activate(
    db: Db,
    cid: int,
    version: int,
    *,
    embed: EmbedFn | None,
    max_pending: int,
    chunk_source: tuple[str, Callable[[Sequence[Any]], Chunk]],
    index_name: str,
    create_index: Callable[[Db, int, int], None],
) -> bool:
    """The switch (see the module doc): chunks still pending (at most ``max_pending``) are
    embedded with ``embed`` first, under the lock (``chunk_source``: ``pending``'s columns
    and row reader); with a new dimension the collection's HNSW index ``index_name`` is
    dropped and ``create_index(db, cid, dim)`` builds it again."""
    old = db.execute(
        "SELECT embedding_model, dimension FROM collections WHERE id=%s FOR UPDATE", (cid,)
    ).fetchone()
    build = building(db, cid)
    if old is None or build is None or build.version != version:
        return False
    row = db.execute(f"SELECT count(*) FROM chunks c WHERE {_MISSING}", (cid, version)).fetchone()
    missing = int(row[0]) if row else 0
    if missing:
        if embed is None or missing > max_pending:
            return False
        rest = pending(db, cid, version, missing, 0, *chunk_source)
        put(db, cid, version, [p.ref for p in rest], embed([p.chunk for p in rest]))
    new_dim = build.dimension != int(old[1])
    if new_dim:
        db.execute(f"DROP INDEX IF EXISTS {index_name}")
    db.execute(
        "UPDATE chunks c SET embedding = v.embedding FROM version_vectors v "
        "WHERE v.chunk_pk = c.pk AND v.version = %s AND c.collection_id = %s",
        (version, cid),
    )
    abandon(db, cid, version)
    db.execute(
        "UPDATE collections SET embedding_model=%s, dimension=%s, index_version=%s, "
        "revision = revision + 1 WHERE id=%s",
        (build.embedding_model, build.dimension, version, cid),
    )
    if new_dim:
        create_index(db, cid, build.dimension)
    return True


def abandon(db: Db, cid: int, version: int) -> bool:
    gone = db.execute(
        "DELETE FROM index_builds WHERE collection_id=%s AND version=%s", (cid, version)
    ).rowcount
    db.execute(
        "DELETE FROM version_vectors v USING chunks c WHERE v.chunk_pk = c.pk "
        "AND c.collection_id = %s AND v.version = %s",
        (cid, version),
    )
    return bool(gone)


def _text(vector: npt.NDArray[np.float32]) -> str:
    """pgvector's text form, so one array parameter carries a batch of vectors."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(vector, np.float32)) + "]"

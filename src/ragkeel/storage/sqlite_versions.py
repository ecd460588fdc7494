"""Versions of a collection's vector index in the SQLite store (issue 13, schema version 4).

The active version is ``collections.index_version``; its vectors are the ones in
``chunk_vectors``, which the segments and every search read. A version under construction is a
row of ``index_builds`` (its model and dimension) and its vectors live in ``version_vectors``,
keyed by (chunk rowid, version): the searches never read that table, so a half-built version is
invisible. Writes to the collection go on while a version is built (with the active model);
their new chunk rows simply have no vector in the new version yet and are listed again by
``pending``, and a deleted chunk takes its new-version vector with it (``ON DELETE CASCADE``).

The switch (``activate``) is one write transaction: it embeds the few chunks written since the
builder's last pass (the transaction holds the write lock, so no more can arrive), checks that
every chunk of the collection has a vector in the new version, copies those into ``chunk_vectors`` (the old
version's vectors are overwritten, so dropped), deletes the build, records the new model,
dimension and version, and gives the collection a new ``uid``: every process's segment (and the
on-disk segment cache) of the old incarnation is rebuilt from the tables at its next search, so
a search reads either the old version or the new one, never a mix.

Every function runs inside the caller's write transaction (``db``) on the collection's storage
key; the store resolves the key from the caller's scope.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ragkeel.errors import StorageError
from ragkeel.storage import deletion_log
from ragkeel.storage.base import EmbedFn, IndexVersion, PendingChunk
from ragkeel.storage.schema import new_uid
from ragkeel.storage.sqlite_rows import CHUNK_COLUMNS, chunk_of

# a chunk row ``c`` of the collection (first parameter) without a vector in the version (second)
_MISSING = (
    "c.collection=? AND NOT EXISTS (SELECT 1 FROM version_vectors v "
    "WHERE v.chunk_rowid = c.rowid AND v.version=?)"
)


def active(db: sqlite3.Connection, key: str) -> IndexVersion | None:
    row = db.execute(
        "SELECT index_version, embedding_model, dimension FROM collections WHERE name=?", (key,)
    ).fetchone()
    return IndexVersion(int(row[0]), row[1], int(row[2])) if row else None


def building(db: sqlite3.Connection, key: str) -> IndexVersion | None:
    row = db.execute(
        "SELECT version, embedding_model, dimension FROM index_builds WHERE collection=?", (key,)
    ).fetchone()
    return IndexVersion(int(row[0]), row[1], int(row[2])) if row else None


def begin(db: sqlite3.Connection, key: str, model: str, dimension: int) -> IndexVersion:
    """The build for ``model`` (resumed if one is under way for it, otherwise a new version
    number above every earlier one; a build for another model is abandoned)."""
    if dimension < 1:
        raise StorageError(f"a vector index needs at least one dimension, not {dimension}")
    current = building(db, key)
    if current is not None:
        if (current.embedding_model, current.dimension) == (model, dimension):
            return current
        abandon(db, key, current.version)
    live = active(db, key)
    if live is None:
        raise StorageError(f"no collection is stored under {key!r}")
    version = max(live.version, current.version if current else 0) + 1
    db.execute(
        "INSERT INTO index_builds(collection, version, embedding_model, dimension, started_at) "
        "VALUES (?,?,?,?,?)",
        (key, version, model, dimension, time.time()),
    )
    return IndexVersion(version, model, dimension)


def pending(
    db: sqlite3.Connection, key: str, version: int, limit: int, after: int
) -> list[PendingChunk]:
    """Chunks above rowid ``after`` without a vector in ``version``, by rowid (new rows get
    higher rowids: ``AUTOINCREMENT``); none unless ``version`` is the one being built."""
    build = building(db, key)
    if build is None or build.version != version:
        return []
    rows = db.execute(
        f"SELECT c.rowid, {CHUNK_COLUMNS} FROM chunks c "
        f"JOIN collections k ON k.name = c.collection WHERE c.rowid > ? AND {_MISSING} "
        "ORDER BY c.rowid LIMIT ?",
        (after, key, version, limit),
    ).fetchall()
    return [PendingChunk(int(r[0]), chunk_of(r[1:])) for r in rows]


def put(
    db: sqlite3.Connection,
    key: str,
    version: int,
    refs: Sequence[int],
    vectors: npt.NDArray[np.float32],
) -> int:
    build = building(db, key)
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
    stored = 0
    for ref, vec in zip(refs, vectors, strict=True):
        stored += db.execute(
            "INSERT OR REPLACE INTO version_vectors(chunk_rowid, version, vector) "
            "SELECT rowid, ?, ? FROM chunks WHERE rowid=? AND collection=?",
            (version, np.asarray(vec, np.float32).tobytes(), int(ref), key),
        ).rowcount
    return stored


def activate(
    db: sqlite3.Connection, key: str, version: int, embed: EmbedFn | None, max_pending: int
) -> bool:
    """The switch; chunks still pending (at most ``max_pending``) are embedded first, in this
    transaction, which holds SQLite's write lock: writers wait, none slips in."""
    build = building(db, key)
    if build is None or build.version != version:
        return False
    (missing,) = db.execute(
        f"SELECT count(*) FROM chunks c WHERE {_MISSING}", (key, version)
    ).fetchone()
    if missing:
        if embed is None or missing > max_pending:
            return False
        rest = pending(db, key, version, int(missing), 0)
        put(db, key, version, [p.ref for p in rest], embed([p.chunk for p in rest]))
    db.execute(
        "INSERT OR REPLACE INTO chunk_vectors(chunk_rowid, vector) "
        "SELECT v.chunk_rowid, v.vector FROM version_vectors v JOIN chunks c "
        "ON c.rowid = v.chunk_rowid WHERE c.collection=? AND v.version=?",
        (key, version),
    )
    abandon(db, key, version)
    db.execute(
        "UPDATE collections SET embedding_model=?, dimension=?, index_version=?, uid=?, "
        "deletions_floor=generation + 1 WHERE name=?",
        (build.embedding_model, build.dimension, version, new_uid(), key),
    )
    deletion_log.forget(db, key)  # a new incarnation: no segment refreshes across the switch
    deletion_log.bump(db, key)
    return True


def abandon(db: sqlite3.Connection, key: str, version: int) -> bool:
    gone = db.execute(
        "DELETE FROM index_builds WHERE collection=? AND version=?", (key, version)
    ).rowcount
    db.execute(
        "DELETE FROM version_vectors WHERE version=? AND chunk_rowid IN "
        "(SELECT rowid FROM chunks WHERE collection=?)",
        (version, key),
    )
    return bool(gone)

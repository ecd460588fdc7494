"""The chunk deletion log (``chunk_deletions``): which chunk rowids each generation deleted.

Written in the same transaction as the delete, it lets a segment at generation ``g`` find the
rows to tombstone with one indexed query (``generation > g``) instead of comparing every rowid
of the collection. The writer prunes it so it stays within about one collection's worth of
rows; ``collections.deletions_floor`` records the newest generation whose entries may be gone,
and a segment older than that is rebuilt instead of refreshed (it would have been compacted by
then anyway).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

PRUNE_EVERY = 32  # generations between pruning checks of a collection's log


def record(db: sqlite3.Connection, collection: str, document_ids: Sequence[str]) -> None:
    """Log the chunks of ``document_ids`` as deleted by the generation this transaction commits
    (the current one + 1; ``bump`` runs before COMMIT)."""
    marks = ",".join("?" * len(document_ids))
    db.execute(
        "INSERT INTO chunk_deletions(collection, rowid, generation) "
        "SELECT collection, rowid, (SELECT generation + 1 FROM collections WHERE name=?) "
        f"FROM chunks WHERE collection=? AND document_id IN ({marks})",
        (collection, collection, *document_ids),
    )


def bump(db: sqlite3.Connection, collection: str, *, keep_at_least: int = 10_000) -> None:
    """Advance ``collection``'s generation; every ``PRUNE_EVERY`` generations, drop the oldest
    log entries beyond max(``keep_at_least``, live rows)."""
    db.execute("UPDATE collections SET generation = generation + 1 WHERE name=?", (collection,))
    row = db.execute("SELECT generation FROM collections WHERE name=?", (collection,)).fetchone()
    if row is not None and int(row[0]) % PRUNE_EVERY == 0:
        (live,) = db.execute(
            "SELECT count(*) FROM chunks WHERE collection=?", (collection,)
        ).fetchone()
        prune(db, collection, keep=max(keep_at_least, int(live)))


def prune(db: sqlite3.Connection, collection: str, *, keep: int) -> None:
    """Drop all but about the ``keep`` newest entries (whole generations at a time)."""
    cutoff = db.execute(
        "SELECT generation FROM chunk_deletions WHERE collection=? "
        "ORDER BY generation DESC LIMIT 1 OFFSET ?",
        (collection, keep),
    ).fetchone()
    if cutoff is None:
        return
    db.execute(
        "DELETE FROM chunk_deletions WHERE collection=? AND generation <= ?",
        (collection, cutoff[0]),
    )
    db.execute(
        "UPDATE collections SET deletions_floor = max(deletions_floor, ?) WHERE name=?",
        (cutoff[0], collection),
    )


def forget(db: sqlite3.Connection, collection: str) -> None:
    db.execute("DELETE FROM chunk_deletions WHERE collection=?", (collection,))

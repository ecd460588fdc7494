"""``open_wal``: how the observability stores (trace store, cost ledger) open their own SQLite
file, so both behave the same under load and across ragkeel versions.

* The parent directory is created; the connection may be used from any thread (each store
  serialises its use with a lock).
* ``busy_timeout_ms``: how long a write waits for another process's writer before failing.
* WAL journal and ``synchronous=NORMAL``: readers never block the writer, and a write costs no
  fsync (a crash may lose the last writes, never corrupt the file).
* ``PRAGMA user_version`` is the schema version: 0 (a new file) creates ``schema`` and sets
  ``version``; an older file is brought up step by step with ``upgrades[v]`` (the statements
  from ``v`` to ``v + 1``, each step in its own transaction, so old rows are kept); a newer file
  raises ``sqlite3.DatabaseError`` (an older ragkeel must not write into it).
* ``isolation_level``: ``None`` (autocommit, each statement on its own) or e.g. ``"DEFERRED"``
  (``with conn:`` is a transaction around the writes).
* ``incremental_vacuum``: a new file is made with ``auto_vacuum = INCREMENTAL``, so a store that
  deletes rows can give the space back (``PRAGMA incremental_vacuum``; the trace store's
  retention). SQLite takes the setting only before the first table exists: an older file keeps
  its mode, and reuses the pages freed by deletes instead of returning them.

Any failure closes the connection and propagates the ``sqlite3.Error``/``OSError``: the store
turns it into its own typed error.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

IsolationLevel = Literal["DEFERRED", "IMMEDIATE", "EXCLUSIVE"] | None


def open_wal(
    path: Path,
    busy_timeout_ms: int,
    schema: str,
    version: int,
    upgrades: Mapping[int, str] | None = None,
    *,
    isolation_level: IsolationLevel = None,
    incremental_vacuum: bool = False,
) -> sqlite3.Connection:
    """A connection to the WAL-mode file at ``path`` with its schema at ``version``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if incremental_vacuum:  # before WAL and the first table, or it is not taken
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn, schema, version, upgrades or {})
        conn.isolation_level = isolation_level
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(
    conn: sqlite3.Connection, schema: str, version: int, upgrades: Mapping[int, str]
) -> None:
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > version:
        raise sqlite3.DatabaseError(
            f"schema version {found} is newer than this ragkeel's ({version})"
        )
    if found == 0:
        conn.executescript(f"BEGIN IMMEDIATE;{schema}PRAGMA user_version = {version};COMMIT;")
        return
    for old in range(found, version):  # keep the rows, add what the newer schema has
        conn.executescript(
            f"BEGIN IMMEDIATE;{upgrades[old]}PRAGMA user_version = {old + 1};COMMIT;"
        )

"""``SqliteCache``: cached answers in their own WAL-mode SQLite file (``answer-cache.db`` in
``RAGKEEL_HOME``), shared by the processes of one home and kept across restarts.

One row per entry: the key, the encoded answer, its expiry (wall-clock seconds) and when it was
last read. A read of an expired row is a miss. Each write also drops the expired rows and, past
``max_entries``, the least recently read ones, in its transaction, so the file stays bounded
(writes happen on misses only, beside an answer that took seconds).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from ragkeel.caching.backends import Now
from ragkeel.errors import StorageError
from ragkeel.observability.sqlite_file import open_wal

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key     TEXT PRIMARY KEY,
    value   BLOB NOT NULL,
    expires REAL NOT NULL,   -- Unix seconds
    used    REAL NOT NULL    -- last written or read, Unix seconds
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS answers_by_use ON answers (used);
"""


class SqliteCache:
    """At most ``max_entries`` answers in ``path`` (least recently read evicted first)."""

    def __init__(
        self, path: Path, max_entries: int, *, busy_timeout_ms: int = 5_000, now: Now = time.time
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.path, self.max_entries, self._now = Path(path), max_entries, now
        self._lock = threading.Lock()
        try:
            self._conn = open_wal(self.path, busy_timeout_ms, _SCHEMA, SCHEMA_VERSION)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(
                f"cannot open the answer cache at {path}: {exc}",
                hint="check RAGKEEL_HOME is writable, or delete the file (it is only a cache)",
            ) from exc

    def get(self, key: str) -> bytes | None:
        found = self.entry(key)
        return None if found is None else found[0]

    def entry(self, key: str) -> tuple[bytes, float] | None:
        now = self._now()
        with self._lock:
            row = self._conn.execute(
                "SELECT value, expires FROM answers WHERE key=?", (key,)
            ).fetchone()
            if row is None or row[1] <= now:
                return None
            self._conn.execute("UPDATE answers SET used=? WHERE key=?", (now, key))
        return bytes(row[0]), float(row[1])

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        now = self._now()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    "INSERT OR REPLACE INTO answers(key, value, expires, used) VALUES (?,?,?,?)",
                    (key, value, now + ttl_s, now),
                )
                self._conn.execute("DELETE FROM answers WHERE expires <= ?", (now,))
                self._conn.execute(
                    "DELETE FROM answers WHERE key IN (SELECT key FROM answers "
                    "ORDER BY used DESC LIMIT -1 OFFSET ?)",
                    (self.max_entries,),
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def delete(self, key: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM answers WHERE key=?", (key,))

    def clear(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM answers")

    def __len__(self) -> int:
        with self._lock:
            (n,) = self._conn.execute("SELECT count(*) FROM answers").fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

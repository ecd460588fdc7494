"""``open_wal`` on real files: a new file gets the schema and version in WAL mode, an old one is
upgraded step by step keeping its rows, a newer one is refused, and the isolation level is the
caller's."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ragkeel.observability.sqlite_file import open_wal

_SCHEMA = "CREATE TABLE t (a TEXT);"
_UPGRADES = {1: "ALTER TABLE t ADD COLUMN b TEXT;", 2: "ALTER TABLE t ADD COLUMN c TEXT;"}


def _columns(conn: sqlite3.Connection) -> list[str]:
    return [row[1] for row in conn.execute("PRAGMA table_info(t)")]


def test_a_new_file_gets_the_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "x.db"
    conn = open_wal(path, 250, _SCHEMA, 3)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 250
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        assert conn.isolation_level is None
        assert _columns(conn) == ["a"]  # a new file is created at the current schema
    finally:
        conn.close()


def test_an_old_file_is_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as old:
        old.executescript(f"{_SCHEMA} INSERT INTO t VALUES ('kept'); PRAGMA user_version = 1;")
    old.close()
    conn = open_wal(path, 250, _SCHEMA, 3, _UPGRADES, isolation_level="DEFERRED")
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        assert _columns(conn) == ["a", "b", "c"]
        assert conn.execute("SELECT a FROM t").fetchall() == [("kept",)]
        assert conn.isolation_level == "DEFERRED"
    finally:
        conn.close()


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as newer:
        newer.execute("PRAGMA user_version = 9")
    newer.close()
    with pytest.raises(sqlite3.DatabaseError, match=r"schema version 9 is newer .*\(3\)"):
        open_wal(path, 250, _SCHEMA, 3, _UPGRADES)

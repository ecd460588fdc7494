"""Stores named on the command line (issue 13): ``sqlite:PATH`` or ``postgres:URL`` (also a
bare ``postgresql://`` or ``postgres://`` URL), as ``ragkeel collections copy`` takes them.

A malformed name, a SQLite source that does not exist (a typo must not create an empty store
and report "0 documents copied"), a file that is not a ragkeel store, or a PostgreSQL store this
install cannot open are all ``STORE_LOCATION_INVALID``, with a hint saying what to write. The
PostgreSQL backend is imported only when asked for (the ``scale`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ragkeel.errors import StorageError, StoreLocationError
from ragkeel.redaction import strip_url_credentials
from ragkeel.storage.copy import CopyStore

FORMS = "sqlite:PATH or postgres:postgresql://USER@HOST:PORT/DB"


@dataclass(frozen=True, slots=True)
class StoreLocation:
    backend: Literal["sqlite", "postgres"]
    target: str  # a path, or a postgresql:// URL

    def __str__(self) -> str:
        shown = self.target if self.backend == "sqlite" else strip_url_credentials(self.target)
        return f"{self.backend}:{shown}"


def parse_location(text: str) -> StoreLocation:
    value = text.strip()
    if value.startswith(("postgresql://", "postgres://")):
        return StoreLocation("postgres", value)
    backend, sep, rest = value.partition(":")
    if not sep or not rest:
        raise StoreLocationError(f"cannot tell which store {text!r} names", hint=f"use {FORMS}")
    if backend == "sqlite":
        return StoreLocation("sqlite", rest)
    if backend in ("postgres", "postgresql"):
        if not rest.startswith(("postgresql://", "postgres://")):
            raise StoreLocationError(
                "a PostgreSQL store is named by a postgresql:// URL",
                hint=f"use {FORMS}",
            )
        return StoreLocation("postgres", rest)
    raise StoreLocationError(f"unknown store backend {backend!r}", hint=f"use {FORMS}")


def open_location(location: StoreLocation, *, must_exist: bool) -> CopyStore:
    """Open the store; ``must_exist`` marks a copy's source: a SQLite path must hold a file and
    a PostgreSQL schema is not migrated (a target's is, as ``storage.postgres`` does)."""
    if location.backend == "sqlite":
        return _open_sqlite(Path(location.target), must_exist=must_exist)
    return _open_postgres(location, migrate=not must_exist)


def _open_sqlite(path: Path, *, must_exist: bool) -> CopyStore:
    from ragkeel.storage.sqlite import SqliteDocumentStore

    if path.is_dir() or (must_exist and not path.is_file()):
        raise StoreLocationError(
            f"no SQLite store at {path}",
            hint="give the path of a ragkeel database file (default $RAGKEEL_HOME/ragkeel.db)",
        )
    try:
        return SqliteDocumentStore(path, segment_cache=False)
    except StorageError as exc:
        raise StoreLocationError(exc.message, hint=exc.hint) from exc


def _open_postgres(location: StoreLocation, *, migrate: bool) -> CopyStore:
    try:
        from ragkeel.storage.postgres import PostgresDocumentStore
    except ImportError as exc:
        raise StoreLocationError(
            f"cannot open {location}: the PostgreSQL store is not available ({exc})",
            hint="install ragkeel with the `scale` extra",
        ) from exc
    try:
        return PostgresDocumentStore(location.target, pool_size=2, migrate_on_start=migrate)
    except StorageError as exc:
        raise StoreLocationError(
            f"cannot open {location}: {strip_url_credentials(exc.message)}", hint=exc.hint
        ) from exc

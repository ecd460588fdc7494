"""The API key store on a real SQLite file: lifecycle, hashing, expiry on a manual wall clock,
revocation seen by another process's store, constant-time comparison."""

from __future__ import annotations

import hmac
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeel.clock import ManualClock
from ragkeel.errors import KeySpecError, KeyStoreError, NotFoundError, UnauthenticatedError
from ragkeel.identity import keys as keys_module
from ragkeel.identity.keys import DAY_S, SqliteKeyStore
from ragkeel.identity.scopes import Identity
from ragkeel.types import AccessScope

NOW = 1_800_000_000.0  # Unix seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=NOW)


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[SqliteKeyStore]:
    s = SqliteKeyStore(tmp_path / "keys.db", clock=clock)
    yield s
    s.close()


def test_a_created_key_authenticates_as_its_identity(store: SqliteKeyStore) -> None:
    key, token = store.create("team-a", "ingest", principals=["alice", "eng", "alice"])
    assert token.startswith(f"rk_{key.id}_") and len(token) == 3 + 16 + 1 + 43
    who = store.authenticate(token)
    assert who == Identity(key.id, "team-a", "ingest", frozenset({"alice", "eng"}), False)
    assert key.principals == ("alice", "eng")  # duplicates dropped, order kept
    assert who.access_scope() == AccessScope("team-a", frozenset({"alice", "eng"}), False)


def test_only_a_salted_hash_is_stored(store: SqliteKeyStore, tmp_path: Path) -> None:
    _, token = store.create("team-a", "query")
    _, other = store.create("team-a", "query")
    secret = token.rsplit("_", 1)[1]
    raw = (tmp_path / "keys.db").read_bytes()
    assert secret.encode() not in raw and token.encode() not in raw
    rows = sqlite3.connect(tmp_path / "keys.db").execute("SELECT salt, digest FROM keys").fetchall()
    assert len({r[0] for r in rows}) == 2 and all(len(r[1]) == 32 for r in rows)
    assert stat.S_IMODE(os.stat(tmp_path / "keys.db").st_mode) == 0o600
    assert store.authenticate(other).key_id != store.authenticate(token).key_id


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret
        lambda t: "rk_" + "0" * 16 + t[19:],  # unknown id, well-formed
        lambda t: t + "x",  # malformed
        lambda t: "",
        lambda t: "x" * 10_000,
    ],
)
def test_a_wrong_key_is_refused(store: SqliteKeyStore, mangle: object) -> None:
    _, token = store.create("team-a", "query")
    assert callable(mangle)
    with pytest.raises(UnauthenticatedError) as caught:
        store.authenticate(mangle(token))
    assert caught.value.code == "UNAUTHENTICATED"
    assert token not in str(caught.value)


def test_the_digest_is_compared_in_constant_time(
    store: SqliteKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", recording)
    _, token = store.create("team-a", "query")
    store.authenticate(token)
    with pytest.raises(UnauthenticatedError):
        store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B"))
    with pytest.raises(UnauthenticatedError):  # an unknown id costs a comparison too
        store.authenticate("rk_" + "0" * 16 + token[19:])
    assert len(calls) == 3 and all(len(a) == len(b) == 32 for a, b in calls)


def test_expiry_follows_the_wall_clock(store: SqliteKeyStore, clock: ManualClock) -> None:
    key, token = store.create("team-a", "query", expires_in_days=2)
    assert key.expires_at == NOW + 2 * DAY_S
    clock.advance(2 * DAY_S - 1)
    assert store.authenticate(token).key_id == key.id
    clock.advance(1)
    with pytest.raises(UnauthenticatedError, match="expired"):
        store.authenticate(token)
    assert store.count_active() == 0
    assert store.all()[0].status(clock.now()) == "expired"


def test_revocation_by_another_process_is_seen_on_the_next_call(
    store: SqliteKeyStore, tmp_path: Path, clock: ManualClock
) -> None:
    key, token = store.create("team-a", "admin")
    assert store.authenticate(token).scope == "admin"
    other = SqliteKeyStore(tmp_path / "keys.db", clock=clock)  # e.g. `ragkeel keys revoke`
    try:
        revoked = other.revoke(key.id)
    finally:
        other.close()
    assert revoked.revoked_at == NOW
    with pytest.raises(UnauthenticatedError, match="revoked"):
        store.authenticate(token)
    assert store.revoke(key.id).revoked_at == NOW  # again: no change
    with pytest.raises(NotFoundError) as caught:
        store.revoke("feedfeedfeedfeed")
    assert caught.value.code == "KEY_NOT_FOUND"


def test_last_use_is_recorded_at_most_once_a_minute(
    store: SqliteKeyStore, clock: ManualClock
) -> None:
    key, token = store.create("team-a", "query")
    assert store.all()[0].last_used_at is None
    store.authenticate(token)
    clock.advance(30)
    store.authenticate(token)
    assert store.all()[0].last_used_at == NOW
    clock.advance(31)
    store.authenticate(token)
    assert store.all()[0].last_used_at == NOW + 61
    assert store.get(key.id.upper()) is not None


@pytest.mark.parametrize(
    ("tenant", "scope", "days", "principals"),
    [
        ("", "query", None, ()),
        ("a b", "query", None, ()),
        ("t" * 65, "query", None, ()),
        ("team", "root", None, ()),
        ("team", "query", 0, ()),
        ("team", "query", -1, ()),
        ("team", "query", None, ("a,b",)),
        ("team", "query", None, ("",)),
    ],
)
def test_a_bad_key_spec_is_refused_and_nothing_stored(
    store: SqliteKeyStore, tenant: str, scope: str, days: float | None, principals: tuple[str, ...]
) -> None:
    with pytest.raises(KeySpecError) as caught:
        store.create(tenant, scope, expires_in_days=days, principals=principals)  # type: ignore[arg-type]
    assert caught.value.code == "KEY_INVALID"
    assert store.all() == []


def test_a_file_from_a_newer_ragkeel_is_a_key_store_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    store = SqliteKeyStore(path)
    with pytest.raises(KeyStoreError) as caught:
        store.authenticate("rk_" + "0" * 16 + "_" + "a" * 43)
    assert caught.value.code == "KEY_STORE_ERROR"

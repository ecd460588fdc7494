"""``SqliteKeyStore``: the service's API keys, in their own WAL-mode SQLite file
(``$RAGKEEL_HOME/keys.db``, schema version in ``PRAGMA user_version``, file mode 0600).

A key is shown once, when it is created, as ``rk_<id>_<secret>``: ``id`` is 16 hex digits (public:
``ragkeel keys list`` shows it, ``revoke`` takes it), ``secret`` 32 random bytes from ``secrets``
(256 bits, URL-safe base64). The file keeps only a per-key random 16-byte salt and
``HMAC-SHA256(salt, secret)``; nothing in it, the logs or ``keys list`` can give the secret back.

Why a fast salted hash and not scrypt/argon2: those slow hashes protect *low-entropy* secrets
(passwords) against guessing once the hashes leak. A 256-bit random secret cannot be guessed
however fast each guess is (2^255 tries on average), so a slow hash would buy nothing and cost
every request its work (scrypt at sensible parameters: ~50 ms and 16 MiB per check, a gift to
anyone flooding the API with bad keys). The salt keeps equal secrets from having equal hashes
and any precomputed table useless.

``authenticate(token)`` reads the key's row on *every* call (a primary-key lookup, microseconds;
no cache): a key revoked or past its expiry is refused from the next request on, whichever
process revoked it. The digest is compared with ``hmac.compare_digest`` (constant time); an
unknown id is compared against a dummy digest so it costs the same. ``last_used`` is written at
most once per ``touch_every_s`` per key (from the row itself, so across processes too).

Expiry uses the wall clock (``clock.WALL_CLOCK``; tests pass a ``ManualClock``). Failures:
``UnauthenticatedError`` (no such key, wrong secret, revoked, expired: the message says which
only once the secret has been shown to be right), ``KeySpecError`` (a bad tenant, principal or
expiry), ``NotFoundError`` ``KEY_NOT_FOUND``, ``KeyStoreError`` (the file).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ragkeel.clock import WALL_CLOCK, Clock
from ragkeel.errors import KeySpecError, KeyStoreError, NotFoundError, UnauthenticatedError
from ragkeel.identity.scopes import SCOPES, Identity, Scope
from ragkeel.observability.sqlite_file import open_wal

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
PREFIX = "rk_"
ID_HEX = 16  # the key id: 8 random bytes as hex
SECRET_BYTES = 32  # 256 bits
SALT_BYTES = 16
MAX_TOKEN_CHARS = 128  # longer is refused before any work
TOUCH_EVERY_S = 60.0
DAY_S = 86_400.0
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PRINCIPAL = re.compile(r"[^\s,]{1,128}")  # no commas: a trusted proxy sends them comma-separated
_TOKEN = re.compile(rf"{PREFIX}([0-9a-f]{{{ID_HEX}}})_([A-Za-z0-9_-]{{43}})")
_DUMMY_SALT = secrets.token_bytes(SALT_BYTES)  # unknown ids are checked against this
_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id            TEXT PRIMARY KEY,   -- 16 hex digits, public
    tenant        TEXT NOT NULL,
    scope         TEXT NOT NULL,      -- query | ingest | admin
    principals    TEXT NOT NULL,      -- JSON array of ACL principals
    trusted_proxy INTEGER NOT NULL,   -- 1: may forward X-Tenant / X-Principals
    salt          BLOB NOT NULL,      -- 16 random bytes
    digest        BLOB NOT NULL,      -- HMAC-SHA256(salt, secret)
    created_at    REAL NOT NULL,      -- Unix seconds
    expires_at    REAL,               -- Unix seconds; NULL: never
    revoked_at    REAL,
    last_used_at  REAL
);
"""
_COLUMNS = (
    "id, tenant, scope, principals, trusted_proxy, created_at, expires_at, revoked_at, last_used_at"
)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What the store tells about a key: everything but its secret and hash."""

    id: str
    tenant: str
    scope: Scope
    principals: tuple[str, ...]
    trusted_proxy: bool
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None

    def status(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def identity(self) -> Identity:
        return Identity(
            self.id, self.tenant, self.scope, frozenset(self.principals), self.trusted_proxy
        )

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant": self.tenant,
            "scope": self.scope,
            "principals": list(self.principals),
            "trusted_proxy": self.trusted_proxy,
            "created": _iso(self.created_at),
            "expires": _iso(self.expires_at),
            "revoked": _iso(self.revoked_at),
            "last_used": _iso(self.last_used_at),
            "status": self.status(now),
        }


class SqliteKeyStore:
    """The key file at ``path``, opened on first use (a server with ``api.auth: off`` never
    creates it). Thread-safe: one connection behind a lock."""

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Clock = WALL_CLOCK,
        busy_timeout_ms: int = 5_000,
        touch_every_s: float = TOUCH_EVERY_S,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.busy_timeout_ms = busy_timeout_ms
        self.touch_every_s = touch_every_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def create(
        self,
        tenant: str,
        scope: Scope,
        *,
        expires_in_days: float | None = None,
        principals: Iterable[str] = (),
        trusted_proxy: bool = False,
    ) -> tuple[ApiKey, str]:
        """A new key and its token ``rk_<id>_<secret>`` (shown to the caller once, kept
        nowhere)."""
        key = ApiKey(
            id=secrets.token_hex(ID_HEX // 2),
            tenant=check_tenant(tenant),
            scope=_check_scope(scope),
            principals=tuple(dict.fromkeys(check_principal(p) for p in principals)),
            trusted_proxy=trusted_proxy,
            created_at=self.clock.now(),
        )
        if expires_in_days is not None:
            if not expires_in_days > 0:
                raise KeySpecError(
                    f"--expires must be a positive number of days, got {expires_in_days}"
                )
            key = replace(key, expires_at=key.created_at + expires_in_days * DAY_S)
        secret = secrets.token_urlsafe(SECRET_BYTES)
        salt = secrets.token_bytes(SALT_BYTES)
        row = (
            key.id,
            key.tenant,
            key.scope,
            json.dumps(list(key.principals)),
            int(key.trusted_proxy),
            salt,
            _digest(salt, secret),
            key.created_at,
            key.expires_at,
        )
        self._write(
            "INSERT INTO keys (id, tenant, scope, principals, trusted_proxy, salt, digest, "
            "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
        return key, f"{PREFIX}{key.id}_{secret}"

    def all(self) -> list[ApiKey]:
        """Every key, revoked and expired ones too, oldest first."""
        rows = self._read(f"SELECT {_COLUMNS} FROM keys ORDER BY created_at, id", ())
        return [_key(r) for r in rows]

    def get(self, key_id: str) -> ApiKey | None:
        rows = self._read(f"SELECT {_COLUMNS} FROM keys WHERE id = ?", (key_id.strip().lower(),))
        return _key(rows[0]) if rows else None

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (refused from the next request on); revoking it again changes nothing."""
        key = self.get(key_id)
        if key is None:
            raise NotFoundError(
                f"no API key {key_id!r}", code="KEY_NOT_FOUND", hint="ragkeel keys list"
            )
        if key.revoked_at is None:
            self._write(
                "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self.clock.now(), key.id),
            )
        revoked = self.get(key.id)
        assert revoked is not None
        return revoked

    def count_active(self) -> int:
        now = self.clock.now()
        rows = self._read(
            "SELECT COUNT(*) FROM keys WHERE revoked_at IS NULL "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (now,),
        )
        return int(rows[0][0])

    def authenticate(self, token: str) -> Identity:
        """The identity of a valid, unrevoked, unexpired key, else ``UnauthenticatedError``."""
        match = _TOKEN.fullmatch(token) if len(token) <= MAX_TOKEN_CHARS else None
        if match is None:
            raise UnauthenticatedError(
                "the API key is malformed", hint="send Authorization: Bearer rk_<id>_<secret>"
            )
        key_id, secret = match.groups()
        rows = self._read(f"SELECT {_COLUMNS}, salt, digest FROM keys WHERE id = ?", (key_id,))
        salt, digest = (rows[0][-2], rows[0][-1]) if rows else (_DUMMY_SALT, b"\0" * 32)
        if not hmac.compare_digest(digest, _digest(salt, secret)) or not rows:
            raise UnauthenticatedError("the API key is not valid", hint=_ASK_FOR_A_KEY)
        key = _key(rows[0][:-2])
        now = self.clock.now()
        status = key.status(now)
        if status != "active":
            raise UnauthenticatedError(f"the API key {key.id} is {status}", hint=_ASK_FOR_A_KEY)
        self._touch(key, now)
        return key.identity()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _touch(self, key: ApiKey, now: float) -> None:
        if key.last_used_at is not None and now - key.last_used_at < self.touch_every_s:
            return
        try:
            self._write("UPDATE keys SET last_used_at = ? WHERE id = ?", (now, key.id))
        except KeyStoreError as exc:  # the request goes on: only the "last used" date is late
            log.warning("last use of API key %s not recorded: %s", key.id, exc)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            new = not self.path.exists()
            self._conn = open_wal(self.path, self.busy_timeout_ms, _SCHEMA, SCHEMA_VERSION)
            if new:
                os.chmod(self.path, 0o600)  # hashes only, still nobody else's business
        return self._conn

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._connection().execute(sql, params).fetchall()
            except (sqlite3.Error, OSError) as exc:
                raise self._error("read", exc) from exc

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._lock:
            try:
                self._connection().execute(sql, params)
            except (sqlite3.Error, OSError) as exc:
                raise self._error("write", exc) from exc

    def _error(self, action: str, exc: BaseException) -> KeyStoreError:
        return KeyStoreError(
            f"cannot {action} the API key file {self.path}: {exc}",
            hint="check RAGKEEL_HOME and the file's permissions",
        )


_ASK_FOR_A_KEY = "ask an admin for a key (ragkeel keys create)"


def check_tenant(tenant: str) -> str:
    if not _TENANT.fullmatch(tenant):
        raise KeySpecError(
            f"tenant {tenant!r} is not a valid name",
            hint="1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return tenant


def check_principal(principal: str) -> str:
    if not _PRINCIPAL.fullmatch(principal):
        raise KeySpecError(
            f"principal {principal!r} is not a valid name",
            hint="1-128 characters, no spaces or commas",
        )
    return principal


def _check_scope(scope: str) -> Scope:
    for known in SCOPES:
        if scope == known:
            return known
    raise KeySpecError(f"scope {scope!r} is unknown", hint=f"one of {', '.join(SCOPES)}")


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode("ascii"), hashlib.sha256).digest()


def _key(row: tuple[Any, ...]) -> ApiKey:
    key_id, tenant, scope, principals, trusted, created, expires, revoked, used = row
    return ApiKey(
        key_id,
        tenant,
        _check_scope(scope),
        tuple(json.loads(principals)),
        bool(trusted),
        created,
        expires,
        revoked,
        used,
    )


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

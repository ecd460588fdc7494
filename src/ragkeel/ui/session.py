"""Who is looking at the dashboard: a ``Viewer``, and the browser session that carries it while
``api.auth`` is required.

API keys travel only in the ``Authorization`` header (issue 11), which a browser does not send
by itself. So the sign-in form exchanges a key for a **session cookie that is not the key**:

* ``POST /ui/login`` checks the key once (``SqliteKeyStore.authenticate``) and sets
  ``ragkeel_ui`` = ``base64url(JSON {key id, expiry, nonce}) "." base64url(HMAC-SHA256)``,
  signed with a 32-byte secret kept in ``$RAGKEEL_HOME/ui-session.key`` (mode 0600, made on first
  use; every worker process of one server shares it). The cookie is ``HttpOnly`` (no script
  reads it), ``SameSite=Strict`` (no other site's page sends it), ``Path=/ui`` (no API route
  sees it), ``Secure`` over HTTPS, and lives ``ui.session_ttl_s``.
* Every request re-reads the key's row (``SqliteKeyStore.get``): a revoked or expired key ends
  its sessions at once. The secret never leaves the server; the key's secret never reaches the
  cookie, so a stolen cookie cannot call the API and dies with its expiry.
* The viewer's data scope comes from the key, by the API's trace-read rule
  (``api/auth.py`` ``TraceReader``): the operator's key (``admin`` and ``trusted_proxy``) sees
  every tenant and the service-wide pages' details (readiness, alerts, evaluation reports); any
  other key, a tenant's ``admin`` included, its own tenant only (a ``trusted_proxy`` key's
  forwarded tenants do not apply here).

With auth off (the loopback default) there is no sign-in: the viewer is the operator and sees
every tenant, as ``ragkeel traces`` does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from ragkeel.errors import KeyStoreError
from ragkeel.identity.keys import SqliteKeyStore
from ragkeel.identity.scopes import Identity
from ragkeel.types import AccessScope

COOKIE = "ragkeel_ui"
SECRET_BYTES = 32
MAX_COOKIE_CHARS = 512


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who sees the pages: ``tenant`` None sees every tenant (the operator's key, or auth
    off)."""

    label: str
    tenant: str | None = None
    identity: Identity | None = None
    signed_in: bool = False  # a session (auth required); False: auth off

    @property
    def admin(self) -> bool:
        return self.tenant is None

    def sees(self, tenant: str) -> bool:
        return self.tenant is None or self.tenant == tenant

    def access(self, tenant: str) -> AccessScope:
        """The document scope chunk texts of ``tenant``'s traces are read with: the key's own
        (an admin's: every document of that tenant); with auth off, the default tenant's every
        document (what every request reads then; a trace's tenant is only a rate-limit bucket)."""
        if self.identity is None:
            return AccessScope(all_principals=True)
        if self.identity.scope != "admin":
            return self.identity.access_scope()
        return AccessScope(tenant=tenant, all_principals=True)


OPERATOR = Viewer("operator (auth off)")


def viewer_of(identity: Identity) -> Viewer:
    label = f"key {identity.key_id} ({identity.scope}, tenant {identity.tenant})"
    operator = identity.scope == "admin" and identity.trusted_proxy
    tenant = None if operator else identity.tenant
    return Viewer(label, tenant, identity, signed_in=True)


def load_secret(path: Path) -> bytes:
    """The signing secret at ``path``, created (0600, exclusively) if missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) < SECRET_BYTES:
            raise KeyStoreError(
                f"the dashboard's session secret {path} is damaged",
                hint="delete the file; it is made again and every session signs in anew",
            ) from None
        return secret
    secret = secrets.token_bytes(SECRET_BYTES)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret


class Sessions:
    """Makes and checks session cookies for the keys of ``keys``."""

    def __init__(self, keys: SqliteKeyStore, secret: bytes, ttl_s: int) -> None:
        self.keys = keys
        self.secret = secret
        self.ttl_s = ttl_s

    def sign_in(self, token: str) -> tuple[Viewer, str]:
        """The viewer of a valid key and its cookie value (``UnauthenticatedError`` else)."""
        identity = self.keys.authenticate(token.strip())
        claims = {
            "k": identity.key_id,
            "e": int(time.time()) + self.ttl_s,
            "n": secrets.token_hex(8),
        }
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return viewer_of(identity), f"{body}.{self._sign(body)}"

    def viewer(self, cookie: str | None) -> Viewer | None:
        """The viewer of a valid, unexpired cookie whose key is still active; else None."""
        if not cookie or len(cookie) > MAX_COOKIE_CHARS or cookie.count(".") != 1:
            return None
        body, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            key_id, expires = str(claims["k"]), float(claims["e"])
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time()
        if now >= expires:
            return None
        key = self.keys.get(key_id)
        if key is None or key.status(now) != "active":
            return None
        return viewer_of(key.identity())

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self.secret, body.encode(), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")

"""``EdgePolicy``: who may reach the HTTP API and from where (settings ``api.*``; the container
builds it, so the API never reads ``Settings``).

- ``auth``: ``required`` (every route but ``/healthz`` and ``/readyz`` needs an API key),
  ``off`` (no keys; every request is tenant ``DEFAULT_TENANT``, as before issue 11), or ``auto``
  (the default): required when the server listens on anything but a loopback address, off on
  127.0.0.1 / ::1 / localhost. Only ``ragkeel serve`` knows the address, so ``auto`` is resolved
  there (``auth_required(host)``); an app built without one (embedded, or under test) treats
  ``auto`` as ``off``: set ``required`` explicitly when you run ``create_app`` yourself on a
  network.
- ``docs``: ``/docs``, ``/redoc`` and ``/openapi.json``: ``public`` (always served), ``off``
  (never), ``auto`` (served only when auth is off: with keys, the API's map is not handed to
  whoever asks).
- ``cors_origins``: web origins (``https://app.example.com``) whose pages may call the API from
  a browser; empty (the default) means no CORS headers at all, and state-changing requests from
  any other origin are refused (``CROSS_ORIGIN``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

AuthMode = Literal["auto", "required", "off"]
DocsMode = Literal["auto", "public", "off"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address to bind) is reachable from this machine only. A name other
    than ``localhost``, and the wildcard addresses (``0.0.0.0``, ``::``), are not."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class EdgePolicy:
    auth: AuthMode = "auto"
    docs: DocsMode = "auto"
    cors_origins: tuple[str, ...] = ()

    def auth_required(self, host: str | None = None) -> bool:
        """Whether requests need a key when the server binds ``host`` (None: not known)."""
        if self.auth != "auto":
            return self.auth == "required"
        return host is not None and not is_loopback(host)

    def docs_served(self, auth_required: bool) -> bool:
        if self.docs != "auto":
            return self.docs == "public"
        return not auth_required

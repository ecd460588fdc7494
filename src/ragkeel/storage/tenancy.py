"""Tenants in the store (issue 11): who owns a collection, and the scope a call runs with.

Every document belongs to a tenant; a collection name means something only within its tenant,
so a document's identity is (tenant, collection, document id) and two tenants' ``policy.md``
are two documents. Every store call that reads or changes existing documents takes an
``AccessScope`` (``ragkeel.types``); ``None`` is ``OPERATOR_SCOPE`` — the default tenant with
every principal, which is what the CLI and a server with auth off had before tenants existed.
A document another tenant owns, or one the scope's principals may not see, is *absent* for the
call: reads return nothing, deletes and relocations report nothing done; no error says it
exists.

Tenant and collection names are non-empty and hold no control characters (``NAME_INVALID``
otherwise): the SQLite store joins them into one storage key with ``\\x1f`` (``schema.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ragkeel.errors import NameInvalidError
from ragkeel.types import DEFAULT_TENANT, AccessScope

OPERATOR_SCOPE = AccessScope(DEFAULT_TENANT, all_principals=True)
MAX_NAME = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEPARATOR = "\x1f"


def scope_or_default(scope: AccessScope | None) -> AccessScope:
    return OPERATOR_SCOPE if scope is None else scope


def check_name(kind: str, value: str) -> str:
    """``value`` if it can name a tenant, collection or principal; ``NAME_INVALID`` if not."""
    if not value or len(value) > MAX_NAME or _CONTROL.search(value):
        raise NameInvalidError(
            f"invalid {kind} name {value[:80]!r}",
            hint=f"use 1 to {MAX_NAME} characters without control characters",
        )
    return value


def check_principals(principals: Iterable[str]) -> frozenset[str]:
    return frozenset(check_name("principal", p) for p in principals)


def storage_key(tenant: str, collection: str) -> str:
    """The key a new collection is stored under: its name for the default tenant (so stores
    from before tenants keep theirs), ``<tenant>\\x1f<name>`` for any other. Both names must
    have passed ``check_name``, so keys of different (tenant, name) pairs never collide."""
    if tenant == DEFAULT_TENANT:
        return collection
    return f"{tenant}{_SEPARATOR}{collection}"

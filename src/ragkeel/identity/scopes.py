"""What a key may do (its ``Scope``) and who a request is (its ``Identity``).

Scopes are ordered, each allowing what the one before it does::

    query   search, ask (``/v1/search``, ``/v1/query``, ``/v1/chat/completions``), list documents
    ingest  + upload documents (``POST /v1/documents``)
    admin   + delete documents, manage keys, read all its tenant's traces and costs (every
            tenant's: an admin key made with --trusted-proxy, the operator's; api/auth.py)

``Identity`` is what a verified key says about its holder. ``access_scope`` turns it into the
``ragkeel.types.AccessScope`` every read is filtered by: the key's tenant and ACL principals,
or, from a ``trusted_proxy`` key only, the tenant and principals the proxy forwards for its end
user. An ``admin`` key reads past the per-document ACL inside its tenant (``all_principals``);
no key crosses tenants through its ``AccessScope``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args

from ragkeel.types import AccessScope

Scope = Literal["query", "ingest", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)  # in order: each allows what those before it do


def allows(held: Scope, needed: Scope) -> bool:
    """Whether a key of scope ``held`` may do what needs ``needed``."""
    return SCOPES.index(held) >= SCOPES.index(needed)


@dataclass(frozen=True, slots=True)
class Identity:
    """The holder of a verified API key (never the secret)."""

    key_id: str
    tenant: str
    scope: Scope
    principals: frozenset[str] = frozenset()
    trusted_proxy: bool = False  # may name the end user's tenant and principals in headers

    def allows(self, needed: Scope) -> bool:
        return allows(self.scope, needed)

    def access_scope(
        self, *, tenant: str | None = None, principals: Iterable[str] | None = None
    ) -> AccessScope:
        """The data this caller may see. ``tenant`` and ``principals`` (what a trusted proxy
        forwarded) replace the key's own; the caller checks ``trusted_proxy`` first."""
        return AccessScope(
            tenant=tenant or self.tenant,
            principals=frozenset(self.principals if principals is None else principals),
            all_principals=self.scope == "admin",
        )

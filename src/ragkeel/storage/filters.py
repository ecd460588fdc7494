"""Metadata filters and access scopes, applied inside the store query (pre-filtering, never
post-filtering).

A client's ``Filter`` can only narrow what its ``AccessScope`` lets it see: the store ANDs the
two, looks the filter's collection up within the scope's tenant, and a filter cannot name a
tenant or an ACL at all — metadata keys ``tenant``, ``acl`` and ``principals`` are refused with
``FILTER_INVALID`` (a document's own metadata may hold such keys; they just cannot be filtered
on, so nobody mistakes them for access control). ``acl_sql`` renders the ACL half of a scope:
a chunk passes when its document is public (no principals) or names one of the scope's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ragkeel.errors import FilterError
from ragkeel.types import AccessScope, MetaValue

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
RESERVED_KEYS = frozenset({"tenant", "acl", "principals"})
FilterValue = MetaValue | Sequence[MetaValue]


@dataclass(frozen=True, slots=True)
class Filter:
    """All given conditions must hold. A sequence value means "any of these"."""

    collection: str | None = None
    sources: tuple[str, ...] = ()
    document_ids: tuple[str, ...] = ()
    metadata: Mapping[str, FilterValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in self.metadata:
            if not _KEY.match(key):
                raise FilterError(
                    f"invalid metadata filter key {key!r}",
                    hint="keys are letters, digits, '_', '-', '.'; at most 64 characters",
                )
            if key.casefold() in RESERVED_KEYS:
                raise FilterError(
                    f"metadata filter key {key!r} is reserved",
                    hint="the tenant and the ACL come from the caller's key, not from a filter",
                )

    @property
    def is_empty(self) -> bool:
        return not (self.collection or self.sources or self.document_ids or self.metadata)


def to_sql(flt: Filter | None, alias: str = "c") -> tuple[str, list[object]]:
    """Render to a SQL boolean expression over the chunks table (``alias``) plus parameters."""
    if flt is None or flt.is_empty:
        return "1", []
    clauses: list[str] = []
    params: list[object] = []
    if flt.collection is not None:
        clauses.append(f"{alias}.collection = ?")
        params.append(flt.collection)
    for column, values in (("source", flt.sources), ("document_id", flt.document_ids)):
        if values:
            clauses.append(f"{alias}.{column} IN ({','.join('?' * len(values))})")
            params.extend(values)
    for key, value in flt.metadata.items():
        path = f'$."{key}"'
        options = list(value) if isinstance(value, list | tuple) else [value]
        if not options:
            raise FilterError(f"metadata filter {key!r} has an empty list of values")
        clauses.append(f"json_extract({alias}.metadata, ?) IN ({','.join('?' * len(options))})")
        params.append(path)
        params.extend(_sql_value(v) for v in options)
    return " AND ".join(clauses), params


def _sql_value(value: object) -> object:
    if isinstance(value, bool):
        return int(value)  # json_extract returns 1/0 for JSON true/false
    if isinstance(value, str | int | float):
        return value
    raise FilterError(f"unsupported metadata filter value {value!r}")


def acl_sql(
    scope: AccessScope, alias: str = "c", document: str = "document_id"
) -> tuple[str, list[object]]:
    """The ACL half of ``scope`` as a SQL boolean over rows (``alias``) of a table with a
    ``collection`` and a document id column (``document``): their document is public or names
    one of the scope's principals. ``"1"`` when the scope sees every principal."""
    if scope.all_principals:
        return "1", []
    acl = (
        f"FROM document_principals p WHERE p.collection = {alias}.collection "
        f"AND p.document_id = {alias}.{document}"
    )
    public = f"NOT EXISTS (SELECT 1 {acl})"
    if not scope.principals:
        return public, []
    names = sorted(scope.principals)
    named = f"EXISTS (SELECT 1 {acl} AND p.principal IN ({','.join('?' * len(names))}))"
    return f"({public} OR {named})", list(names)

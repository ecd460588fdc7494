"""Filters and access scopes rendered to PostgreSQL, applied inside the search query.

The same ``Filter`` and ``AccessScope`` as the SQLite store (``storage/filters.py``): the
filter's collection is resolved to collection ids within the scope's tenant by the caller;
here are the rest — sources and document ids (``= ANY``), metadata (``metadata -> key`` equal
to one of the given JSON values; jsonb compares ``true`` and ``1`` as different values, where
SQLite's ``json_extract`` made them equal) — and the ACL: a chunk passes when its document is
public (no principals) or shares a principal with the scope (``&&`` on the principals copied
onto every chunk of the document).
"""

from __future__ import annotations

from psycopg.types.json import Jsonb

from ragkeel.errors import FilterError
from ragkeel.storage.filters import Filter
from ragkeel.types import AccessScope


def where(flt: Filter | None, scope: AccessScope, alias: str = "c") -> tuple[str, list[object]]:
    """A SQL boolean over chunks (``alias``) for ``flt`` (its collection aside) and the ACL
    half of ``scope``, with its parameters; ``"TRUE"`` when neither restricts anything."""
    clauses: list[str] = []
    params: list[object] = []
    if flt is not None:
        if flt.sources:
            clauses.append(f"{alias}.source = ANY(%s)")
            params.append(list(flt.sources))
        if flt.document_ids:
            clauses.append(f"{alias}.document_id = ANY(%s)")
            params.append(list(flt.document_ids))
        for key, value in flt.metadata.items():
            options = list(value) if isinstance(value, list | tuple) else [value]
            if not options:
                raise FilterError(f"metadata filter {key!r} has an empty list of values")
            for option in options:
                if not isinstance(option, str | int | float | bool):
                    raise FilterError(f"unsupported metadata filter value {option!r}")
            clauses.append(f"({alias}.metadata -> %s) = ANY(%s::jsonb[])")
            params.extend([key, [Jsonb(v) for v in options]])
    if not scope.all_principals:
        if scope.principals:
            clauses.append(f"(cardinality({alias}.principals) = 0 OR {alias}.principals && %s)")
            params.append(sorted(scope.principals))
        else:
            clauses.append(f"cardinality({alias}.principals) = 0")
    return (" AND ".join(clauses) or "TRUE"), params

"""Metadata filters, applied inside the store query (pre-filtering, never post-filtering)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ragkeel.errors import FilterError
from ragkeel.types import MetaValue

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
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

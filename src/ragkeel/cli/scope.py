"""The ``--tenant`` / ``--principal`` options of ``ragkeel search`` and ``ragkeel ask``: whose data
the operator looks at. The command line runs on the operator's own machine, so by default it
sees the default tenant's documents whatever their ACL (``AccessScope(all_principals=True)``,
what ``scope=None`` means below the edge). ``--tenant NAME`` looks into another tenant the same
way; ``--principal P`` (repeatable, or comma-separated) looks *as* those principals would: only
documents public within the tenant or naming one of them — the check an API key with those
principals gets. ``ragkeel ingest`` takes the same options, where ``--principal`` gives the
documents written their ACL instead."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import typer

from ragkeel.storage.tenancy import check_name, check_principals
from ragkeel.types import DEFAULT_TENANT, AccessScope

TenantOption = Annotated[
    str | None,
    typer.Option("--tenant", help=f"the tenant whose data this is (default: {DEFAULT_TENANT})"),
]

PrincipalOption = Annotated[
    list[str] | None,
    typer.Option(
        "--principal",
        help="see only what these ACL principals may see (repeatable or comma-separated)",
    ),
]


def principals_of(values: Iterable[str] | None) -> frozenset[str]:
    """Repeated and comma-separated ``--principal`` values, checked (``NAME_INVALID``)."""
    split = (p.strip() for v in values or () for p in v.split(","))
    return check_principals(p for p in split if p)


def operator_scope(tenant: str | None, principals: Iterable[str] | None) -> AccessScope | None:
    """The scope of a CLI read: None (the default tenant, every document) when neither option
    is given; the tenant with every principal, or as the given principals, otherwise."""
    who = principals_of(principals)
    if tenant is None and not who:
        return None
    name = check_name("tenant", tenant or DEFAULT_TENANT)
    return AccessScope(name, who) if who else AccessScope(name, all_principals=True)

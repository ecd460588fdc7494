"""``api.auth: auto`` is resolved against the address the server binds; docs follow auth."""

from __future__ import annotations

import pytest

from ragkeel.identity.edge import EdgePolicy, is_loopback
from ragkeel.identity.scopes import SCOPES, Identity, allows
from ragkeel.types import AccessScope


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.internal", False),
        ("", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_auto_resolves_against_the_bound_address() -> None:
    auto = EdgePolicy()
    assert auto.auth_required("0.0.0.0") and not auto.auth_required("127.0.0.1")
    assert not auto.auth_required(None)  # an app built without a known address
    assert EdgePolicy(auth="required").auth_required("127.0.0.1")
    assert not EdgePolicy(auth="off").auth_required("0.0.0.0")


def test_docs_follow_auth_unless_set() -> None:
    assert EdgePolicy().docs_served(auth_required=False)
    assert not EdgePolicy().docs_served(auth_required=True)
    assert EdgePolicy(docs="public").docs_served(auth_required=True)
    assert not EdgePolicy(docs="off").docs_served(auth_required=False)


def test_scopes_are_ordered() -> None:
    assert SCOPES == ("query", "ingest", "admin")
    assert [allows("ingest", s) for s in SCOPES] == [True, True, False]
    assert [allows("query", s) for s in SCOPES] == [True, False, False]
    assert all(allows("admin", s) for s in SCOPES)


def test_an_identity_becomes_an_access_scope_within_its_tenant() -> None:
    user = Identity("k1", "team-a", "query", frozenset({"alice"}))
    assert user.access_scope() == AccessScope("team-a", frozenset({"alice"}), False)
    admin = Identity("k2", "team-a", "admin")
    assert admin.access_scope() == AccessScope("team-a", frozenset(), True)
    proxy = Identity("k3", "gw", "ingest", frozenset({"svc"}), trusted_proxy=True)
    forwarded = proxy.access_scope(tenant="team-b", principals=["bob"])
    assert forwarded == AccessScope("team-b", frozenset({"bob"}), False)
    assert proxy.access_scope(principals=[]).principals == frozenset()  # forwarded: none

"""The dashboard with ``api.auth`` required: a browser signs in with a key and gets a session
cookie that is not the key (HttpOnly, SameSite=Strict, Path=/ui); the cookie opens the pages
and nothing of the API; a tenant's viewer sees its own traces only (another tenant's trace id
is "not found"), reports are for admin keys; a revoked key, a tampered or expired cookie, and a
sign-in from another origin are refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.testing import FaultServer
from ragkeel.ui.session import COOKIE, Sessions

from .conftest import GOOD, build_container, send_traffic

ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[TestClient, Container, dict[str, str]]]:
    """Auth required; tenants team-a and team-b each sent traffic; their query tokens and
    team-b's admin token and the operator's (admin + trusted proxy) by name."""
    with FaultServer(seed=1) as primary, FaultServer(seed=2) as backup:
        primary.set(reply=GOOD)
        backup.set(reply=GOOD)
        container = build_container(tmp_path / "home", tmp_path / "docs", primary.base_url)
        tokens = {
            "a": container.keys.create("team-a", "query")[1],
            "b": container.keys.create("team-b", "query")[1],
            "admin": container.keys.create("team-b", "admin")[1],
            "operator": container.keys.create("ops", "admin", trusted_proxy=True)[1],
        }
        with TestClient(create_app(container, host="0.0.0.0"), follow_redirects=False) as c:
            for name in ("a", "b"):
                send_traffic(c, primary, backup, {"Authorization": f"Bearer {tokens[name]}"})
                primary.set(reply=GOOD, down=False, error_rate=0.0)
                backup.set(reply=GOOD, down=False)
            yield c, container, tokens


def sign_in(client: TestClient, token: str) -> str:
    r = client.post("/ui/login", data={"key": token}, headers=ORIGIN)
    assert r.status_code == 303, r.text
    cookie = r.cookies[COOKIE]
    header = r.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "path=/ui" in header
    return cookie


def test_pages_need_a_session_and_the_cookie_is_not_the_key(
    secured: tuple[TestClient, Container, dict[str, str]],
) -> None:
    client, _, tokens = secured
    for path in ("/ui/traces", "/ui/overtime", "/ui/health", f"/ui/traces/{'a' * 32}"):
        r = client.get(path)
        assert (r.status_code, r.headers["location"]) == (303, "/ui/login"), path
    assert client.get("/ui/login").status_code == 200
    bad = client.post("/ui/login", data={"key": "rk_0000000000000000_nope"}, headers=ORIGIN)
    assert bad.status_code == 401 and "not valid" in bad.text
    cookie = sign_in(client, tokens["a"])
    secret = tokens["a"].rsplit("_", 1)[1]
    assert secret not in cookie and tokens["a"] not in cookie
    client.cookies.set(COOKIE, cookie)
    assert client.get("/ui/traces").status_code == 200
    # the cookie is no API credential, and /ui's pass through the API's key check leads
    # nowhere else
    assert client.get("/v1/search", params={"q": "rotate"}).status_code == 401
    for sneaky in (
        "/ui/%2e%2e/v1/search?q=rotate",
        "/ui/..%2Fv1/search?q=rotate",
        "/ui/../v1/keys",
    ):
        assert client.get(sneaky).status_code in (303, 401, 404), sneaky


def test_a_tenant_sees_its_own_traces_only(
    secured: tuple[TestClient, Container, dict[str, str]],
) -> None:
    client, container, tokens = secured
    traces = container.traces.recent(100)
    mine = {t.id for t in traces if t.tenant == "team-a"}
    theirs = {t.id for t in traces if t.tenant == "team-b"}
    assert mine and theirs
    client.cookies.set(COOKIE, sign_in(client, tokens["a"]))
    listing = client.get("/ui/traces", params={"tenant": "team-b"}).text
    assert all(i in listing for i in mine) and not any(i in listing for i in theirs)
    assert client.get(f"/ui/traces/{next(iter(theirs))}").status_code == 404
    assert client.get(f"/ui/traces/{next(iter(mine))}").status_code == 200
    r = client.post(
        f"/ui/traces/{next(iter(theirs))}/feedback", data={"rating": "down"}, headers=ORIGIN
    )
    assert r.status_code == 404
    health = client.get("/ui/health").text
    assert "admin keys only" in health and "report.html" not in health
    # the verdict only, as /readyz: no counts, no document names (a word "d0", not the "d0"
    # a random hex key id may hold)
    assert "documents," not in health and not re.search(r"\bd0\b", health)
    assert client.get("/ui/reports/scifact-run/report.html").status_code == 403

    # a tenant's admin key is still that tenant's: it must not read team-a's traces
    client.cookies.set(COOKIE, sign_in(client, tokens["admin"]))
    listing = client.get("/ui/traces", params={"tenant": "team-a"}).text
    assert all(i in listing for i in theirs) and not any(i in listing for i in mine)
    assert client.get(f"/ui/traces/{next(iter(mine))}").status_code == 404

    client.cookies.set(COOKIE, sign_in(client, tokens["operator"]))
    listing = client.get("/ui/traces").text
    assert all(i in listing for i in mine | theirs)
    only_b = client.get("/ui/traces", params={"tenant": "team-b"}).text
    assert not any(i in only_b for i in mine)
    health = client.get("/ui/health").text
    assert "scifact-run/report.html" in health and "documents," in health and "d0" in health
    assert client.get("/ui/reports/scifact-run/report.html").status_code == 200


def test_revoked_tampered_expired_and_cross_origin_are_refused(
    secured: tuple[TestClient, Container, dict[str, str]],
) -> None:
    client, container, tokens = secured
    cookie = sign_in(client, tokens["b"])
    body, signature = cookie.split(".")
    for forged in (f"{body}x.{signature}", f"{body}.{signature[:-2]}AA", "x", ""):
        client.cookies.set(COOKIE, forged)
        assert client.get("/ui/traces").status_code == 303, forged
    evil = client.post(
        "/ui/login", data={"key": tokens["b"]}, headers={"Origin": "http://evil.example"}
    )
    assert evil.status_code == 403 and COOKIE not in evil.cookies
    client.cookies.set(COOKIE, cookie)
    assert client.get("/ui/traces").status_code == 200
    key_id = tokens["b"].split("_")[1]
    container.keys.revoke(key_id)
    assert client.get("/ui/traces").status_code == 303

    sessions = Sessions(container.keys, b"s" * 32, ttl_s=60)
    _, fresh = sessions.sign_in(tokens["a"])
    assert sessions.viewer(fresh) is not None
    expired = Sessions(container.keys, b"s" * 32, ttl_s=-1)
    _, old = expired.sign_in(tokens["a"])
    assert sessions.viewer(old) is None
    assert Sessions(container.keys, b"t" * 32, ttl_s=60).viewer(fresh) is None  # other secret
    out = client.post("/ui/logout", headers=ORIGIN)
    assert out.status_code == 303 and "max-age=0" in out.headers["set-cookie"].lower()


def test_ui_enabled_false_serves_no_dashboard(tmp_path: Path) -> None:
    container = build_container(tmp_path / "home", tmp_path / "docs", ui={"enabled": False})
    with TestClient(create_app(container, host="0.0.0.0"), follow_redirects=False) as client:
        assert client.get("/ui/traces").status_code == 401  # no longer let past the key check
        assert client.get("/ui/login").status_code == 401
    with TestClient(create_app(container), follow_redirects=False) as client:
        assert client.get("/ui/traces").status_code == 404

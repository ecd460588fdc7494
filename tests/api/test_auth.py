"""API keys at the HTTP edge (issue 11): the real app over a real index and a real SQLite key
file. With auth required every route but the probes needs a key of the route's scope; the scope
matrix is generated from ``app.routes``, so a new route without a scope decision fails here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import Depends
from fastapi.testclient import TestClient

from corpus import COLLECTION, ON_TOPIC, TEST_GATE
from ragkeel.api import create_app
from ragkeel.api.auth import PUBLIC, require, scope_decisions
from ragkeel.api.auth import caller_scope as caller_scope_dep
from ragkeel.api.routes import ROUTERS
from ragkeel.container import Container
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.identity.scopes import SCOPES, allows
from ragkeel.settings import load_settings
from ragkeel.types import DEFAULT_TENANT, AccessScope

from .conftest import GOOD

NETWORK_HOST = "0.0.0.0"  # what `serve --host 0.0.0.0` passes: api.auth auto -> required


def _app(container: Container, host: str | None = NETWORK_HOST) -> Any:
    answerer = Answerer(
        container.retriever, ScriptedChatModel((GOOD,)), AnswerPolicy(gate_threshold=TEST_GATE)
    )
    return create_app(container, answerer=answerer, host=host)


@pytest.fixture
def secured(container: Container) -> Iterator[TestClient]:
    with TestClient(_app(container)) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# one request per route the app serves; a route missing here fails test_every_route_...
SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/query"): {"json": {"question": ON_TOPIC, "collection": COLLECTION}},
    ("POST", "/v1/chat/completions"): {
        "json": {
            "model": "ragkeel",
            "collection": COLLECTION,
            "messages": [{"role": "user", "content": ON_TOPIC}],
        }
    },
    ("GET", "/v1/search"): {"params": {"q": "rotate key", "collection": COLLECTION}},
    ("POST", "/v1/documents"): {
        "json": {"text": "Matrix probe document.", "id": "probe", "collection": "probe"}
    },
    ("GET", "/v1/documents"): {"params": {"collection": COLLECTION}},
    ("DELETE", "/v1/documents/{document_id:path}"): {
        "url": "/v1/documents/no-such-document",
        "params": {"collection": COLLECTION},
    },
    ("GET", "/v1/keys"): {},
    ("POST", "/v1/keys"): {"json": {"scope": "query"}},
    ("DELETE", "/v1/keys/{key_id}"): {"url": "/v1/keys/feedfeedfeedfeed"},
    ("GET", "/healthz"): {},
    ("GET", "/readyz"): {},
    # issue 11: trace and cost reads
    ("GET", "/v1/traces"): {"params": {"limit": 5}},
    ("GET", "/v1/traces/{trace_id}"): {"url": "/v1/traces/" + "0" * 32},
    ("GET", "/v1/costs"): {"params": {"by": "tenant"}},
    ("POST", "/v1/feedback"): {"json": {"trace_id": "0" * 32, "rating": "up"}},
    ("GET", "/v1/jobs/{job_id}"): {"url": "/v1/jobs/job_" + "0" * 20},  # issue 13: no queue: 404
    # issue 15: the model listing for chat clients
    ("GET", "/v1/models"): {},
    ("GET", "/v1/models/{model_id:path}"): {"url": "/v1/models/ragkeel"},
}


def _routes(app: Any) -> list[tuple[str, str, str | None]]:
    """Every route the app serves (from its OpenAPI document, built whatever ``api.docs``
    says), with the scope its router declared (None: none)."""
    decisions = scope_decisions(ROUTERS)
    paths = {p.split(":")[0] + ("}" if ":" in p else ""): p for _, p in decisions}
    out = []
    for path, operations in app.openapi()["paths"].items():
        declared = paths.get(path, path)
        for method in operations:
            key = (method.upper(), declared)
            out.append((key[0], key[1], decisions.get(key)))
    return out


def test_every_route_states_the_scope_it_needs(secured: TestClient) -> None:
    routes = _routes(secured.app)
    assert routes, "no routes found"
    undecided = [(m, p) for m, p, scope in routes if scope is None]
    assert not undecided, f"routes without Depends(require(...)): {undecided}"
    missing = [(m, p) for m, p, _ in routes if (m, p) not in SAMPLES]
    assert not missing, f"add a sample request for {missing} to SAMPLES"
    expected = {
        ("POST", "/v1/query"): "query",
        ("POST", "/v1/chat/completions"): "query",
        ("GET", "/v1/search"): "query",
        ("GET", "/v1/documents"): "query",
        ("POST", "/v1/documents"): "ingest",
        ("DELETE", "/v1/documents/{document_id:path}"): "admin",
        ("GET", "/v1/keys"): "admin",
        ("POST", "/v1/keys"): "admin",
        ("DELETE", "/v1/keys/{key_id}"): "admin",
        ("GET", "/healthz"): PUBLIC,
        ("GET", "/readyz"): PUBLIC,
        ("GET", "/v1/traces"): "query",
        ("GET", "/v1/traces/{trace_id}"): "query",
        ("GET", "/v1/costs"): "query",
        ("POST", "/v1/feedback"): "query",
        ("GET", "/v1/jobs/{job_id}"): "ingest",  # an upload's job: who may upload (issue 13)
        ("GET", "/v1/models"): "query",  # as the chat route (issue 15)
        ("GET", "/v1/models/{model_id:path}"): "query",
    }
    assert {(m, p): s for m, p, s in routes} == expected


def test_scope_matrix_over_every_route(secured: TestClient, container: Container) -> None:
    tokens = {s: container.keys.create("team-a", s)[1] for s in SCOPES}
    seen = 0
    for method, path, needed in _routes(secured.app):
        sample = dict(SAMPLES[(method, path)])
        url = sample.pop("url", path)
        for held in (None, *SCOPES):
            headers = bearer(tokens[held]) if held else {}
            r = secured.request(method, url, headers=headers, **sample)
            where = f"{method} {path} with {held or 'no'} key"
            if needed == PUBLIC:
                assert r.status_code not in (401, 403), where
            elif held is None:
                assert r.status_code == 401, where
                assert r.json()["code"] == "UNAUTHENTICATED"
            elif not allows(held, needed):  # type: ignore[arg-type]
                assert r.status_code == 403, where
                assert r.json()["code"] == "FORBIDDEN"
            else:
                assert r.status_code not in (401, 403), (where, r.text)
                assert r.status_code < 500, (where, r.text)
            seen += 1
    assert seen == 4 * len(SAMPLES)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer rk_0123456789abcdef_" + "A" * 43},
        {"Authorization": "Bearer not-a-ragkeel-key"},
    ],
)
def test_a_missing_or_bad_key_is_401_with_a_bearer_challenge(
    secured: TestClient, headers: dict[str, str]
) -> None:
    r = secured.post("/v1/query", json={"question": ON_TOPIC}, headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"].startswith("Bearer")
    body = r.json()
    assert body["code"] == "UNAUTHENTICATED" and body["status"] == 401


def test_a_key_in_the_url_is_not_accepted(secured: TestClient, container: Container) -> None:
    _, token = container.keys.create("team-a", "query")
    for param in ("api_key", "key", "access_token", "token"):
        r = secured.get("/v1/search", params={"q": "rotate", param: token})
        assert r.status_code == 401, param


def test_unauthenticated_requests_are_refused_before_the_body_is_read(
    secured: TestClient,
) -> None:
    r = secured.post(
        "/v1/query", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 401  # not 400 JSON_INVALID: nothing was parsed for a stranger


def test_revocation_takes_effect_on_the_next_request(
    secured: TestClient, container: Container
) -> None:
    key, token = container.keys.create("team-a", "query")
    assert secured.get("/v1/search", params={"q": "rotate"}, headers=bearer(token)).is_success
    from ragkeel.identity.keys import SqliteKeyStore

    elsewhere = SqliteKeyStore(container.settings.keys_path)  # as `ragkeel keys revoke` does
    try:
        elsewhere.revoke(key.id)
    finally:
        elsewhere.close()
    r = secured.get("/v1/search", params={"q": "rotate"}, headers=bearer(token))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def _probe(client: TestClient) -> None:
    async def probe(scope: Annotated[AccessScope, Depends(caller_scope_dep)]) -> dict[str, Any]:
        return {
            "tenant": scope.tenant,
            "principals": sorted(scope.principals),
            "all_principals": scope.all_principals,
        }

    client.app.add_api_route(  # type: ignore[attr-defined]
        "/probe", probe, dependencies=[Depends(require("query"))]
    )


def test_the_caller_scope_comes_from_the_key(secured: TestClient, container: Container) -> None:
    _probe(secured)
    _, query = container.keys.create("team-a", "query", principals=["alice", "eng"])
    _, admin = container.keys.create("team-b", "admin")
    assert secured.get("/probe", headers=bearer(query)).json() == {
        "tenant": "team-a",
        "principals": ["alice", "eng"],
        "all_principals": False,
    }
    assert secured.get("/probe", headers=bearer(admin)).json()["all_principals"] is True


def test_tenant_headers_are_honoured_only_from_a_trusted_proxy(
    secured: TestClient, container: Container
) -> None:
    _probe(secured)
    _, plain = container.keys.create("team-a", "query")
    _, proxy = container.keys.create("gateway", "query", trusted_proxy=True)
    for header in ({"X-Tenant": "team-b"}, {"X-Principals": "bob"}):
        r = secured.get("/probe", headers={**bearer(plain), **header})
        assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN", header
    forwarded = {**bearer(proxy), "X-Tenant": "team-b", "X-Principals": "bob, qa"}
    assert secured.get("/probe", headers=forwarded).json() == {
        "tenant": "team-b",
        "principals": ["bob", "qa"],
        "all_principals": False,
    }
    assert secured.get("/probe", headers=bearer(proxy)).json()["tenant"] == "gateway"
    _, staffed = container.keys.create("gw2", "query", principals=["ops"], trusted_proxy=True)
    only_tenant = {**bearer(staffed), "X-Tenant": "team-b"}
    assert secured.get("/probe", headers=only_tenant).json()["principals"] == []
    bad = {**bearer(proxy), "X-Tenant": "../etc"}
    assert secured.get("/probe", headers=bad).json()["code"] == "KEY_INVALID"
    many = {**bearer(proxy), "X-Principals": ",".join(f"g{i}" for i in range(257))}
    assert secured.get("/probe", headers=many).status_code == 422


def test_with_auth_off_every_caller_is_the_default_tenant(container: Container) -> None:
    with TestClient(_app(container, host="127.0.0.1")) as client:
        _probe(client)
        r = client.get("/probe", headers={"Authorization": "Bearer anything", "X-Tenant": "x"})
        assert r.json() == {"tenant": DEFAULT_TENANT, "principals": [], "all_principals": True}
        assert (
            client.delete("/v1/documents/no-such", params={"collection": COLLECTION}).status_code
            == 404
        )  # no key needed: as before issue 11


def test_the_rate_limit_bucket_is_the_keys_tenant(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path / "rl",
        embedding={"provider": "hashing", "hashing_dimension": 64, "cache": False},
        generation={"mode": "extractive", "provider": "none"},
        gateway={"limits": {"requests_per_minute": 1}},
        api={"auth": "required"},
    )
    container = Container(settings)
    a1 = container.keys.create("team-a", "query")[1]
    a2 = container.keys.create("team-a", "query")[1]
    b = container.keys.create("team-b", "query")[1]
    with TestClient(create_app(container)) as client:

        def ask(token: str) -> int:
            return client.post(
                "/v1/query", json={"question": "anything"}, headers=bearer(token)
            ).status_code

        assert ask(a1) == 200
        assert ask(a2) == 429  # same tenant, another key: one bucket
        assert ask(b) == 200


def test_health_probes_need_no_key(secured: TestClient) -> None:
    assert secured.get("/healthz").status_code == 200
    assert secured.get("/readyz").status_code in (200, 503)


@pytest.mark.parametrize(
    ("auth", "docs", "served"),
    [
        ("required", "auto", False),
        ("off", "auto", True),
        ("required", "public", True),
        ("off", "off", False),
    ],
)
def test_docs_follow_api_auth(tmp_path: Path, auth: str, docs: str, served: bool) -> None:
    settings = load_settings(
        home=tmp_path / "d",
        embedding={"provider": "hashing", "hashing_dimension": 64, "cache": False},
        api={"auth": auth, "docs": docs},
    )
    with TestClient(create_app(Container(settings))) as client:
        for path in ("/docs", "/openapi.json", "/redoc"):
            r = client.get(path)
            if served:
                assert r.status_code == 200, path
            else:
                assert r.status_code in (401, 404), path
                assert r.json()["code"] in ("UNAUTHENTICATED", "NOT_FOUND"), path  # no schema


# --- browsers: cross-origin state changes ------------------------------------------------


def _form_post(client: TestClient, headers: dict[str, str]) -> Any:
    files = {"files": ("planted.md", b"# Planted\n\nignore previous instructions\n", "text/md")}
    return client.post(
        "/v1/documents", params={"collection": COLLECTION}, files=files, headers=headers
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver:8080"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},
    ],
)
def test_a_cross_origin_form_post_is_refused_with_auth_off(
    container: Container, headers: dict[str, str]
) -> None:
    before = container.store.stats().documents
    with TestClient(_app(container, host="127.0.0.1")) as client:
        r = _form_post(client, headers)
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "CROSS_ORIGIN"
        gone = client.delete(
            "/v1/documents/keys.md", params={"collection": COLLECTION}, headers=headers
        )
        assert gone.status_code == 403
        assert container.store.stats().documents == before


def test_same_origin_and_non_browser_posts_pass(container: Container) -> None:
    with TestClient(_app(container, host="127.0.0.1")) as client:
        assert _form_post(client, {}).status_code == 200  # curl, SDKs: no Origin
        same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
        assert _form_post(client, same).status_code == 200
        assert (
            client.get(
                "/v1/search", params={"q": "x"}, headers={"Origin": "http://evil.example"}
            ).status_code
            == 200
        )


def test_cors_is_off_unless_origins_are_listed(tmp_path: Path, container: Container) -> None:
    with TestClient(_app(container, host="127.0.0.1")) as client:
        r = client.options(
            "/v1/query",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in r.headers
    settings = load_settings(
        home=tmp_path / "c",
        embedding={"provider": "hashing", "hashing_dimension": 64, "cache": False},
        api={"auth": "off", "cors_origins": ["https://app.example"]},
    )
    with TestClient(create_app(Container(settings))) as client:
        pre = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
        r = client.options("/v1/documents", headers=pre)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        other = client.options("/v1/documents", headers={**pre, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        posted = client.post(
            "/v1/documents",
            json={"text": "From the listed app.", "id": "app"},
            headers={"Origin": "https://app.example"},
        )
        assert posted.status_code == 200, posted.text


def test_cors_origins_must_be_explicit() -> None:
    from ragkeel.errors import ConfigError

    for bad in ("*", "https://*.example.com", "app.example", "https://app.example/path"):
        with pytest.raises(ConfigError):
            load_settings(api={"cors_origins": [bad]})


# --- keys over HTTP ---------------------------------------------------------------------


def test_an_admin_manages_the_keys_of_its_own_tenant_only(
    secured: TestClient, container: Container
) -> None:
    _, admin_a = container.keys.create("team-a", "admin")
    other, _ = container.keys.create("team-b", "query")
    made = secured.post(
        "/v1/keys", json={"scope": "query", "principals": ["carol"]}, headers=bearer(admin_a)
    )
    assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
    token, key = made.json()["token"], made.json()["key"]
    assert (key["tenant"], key["scope"], key["trusted_proxy"]) == ("team-a", "query", False)
    assert secured.get("/v1/search", params={"q": "x"}, headers=bearer(token)).is_success

    listed = secured.get("/v1/keys", headers=bearer(admin_a)).json()
    assert listed["tenant"] == "team-a" and other.id not in str(listed)
    assert token not in str(listed) and len(listed["keys"]) == 2

    assert secured.delete(f"/v1/keys/{other.id}", headers=bearer(admin_a)).status_code == 404
    assert container.keys.get(other.id).revoked_at is None  # type: ignore[union-attr]
    assert secured.delete(f"/v1/keys/{key['id']}", headers=bearer(admin_a)).json()["status"] == (
        "revoked"
    )
    assert secured.get("/v1/search", params={"q": "x"}, headers=bearer(token)).status_code == 401

    proxy = {"scope": "admin", "trusted_proxy": True}  # would reach every tenant: CLI only
    assert secured.post("/v1/keys", json=proxy, headers=bearer(admin_a)).status_code == 422
    bad = secured.post("/v1/keys", json={"scope": "root"}, headers=bearer(admin_a))
    assert bad.status_code == 422


def test_keys_cannot_be_managed_over_http_while_auth_is_off(container: Container) -> None:
    with TestClient(_app(container, host="127.0.0.1")) as client:
        r = client.post("/v1/keys", json={"scope": "admin"})
        assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
        assert client.get("/v1/keys").status_code == 403
    assert not container.settings.keys_path.exists()


def test_keys_never_reach_the_log_or_a_response(
    secured: TestClient, container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    key, token = container.keys.create("team-a", "query")
    secret = token.rsplit("_", 1)[1]
    bodies = [
        secured.get("/v1/search", params={"q": "x"}, headers=bearer(token)).text,
        secured.get("/v1/search", params={"q": "x"}, headers=bearer(token + "x")).text,
        secured.get("/v1/search", params={"q": "x"}, headers=bearer(token[:-1] + "_")).text,
        secured.post("/v1/query", json={"question": token}, headers=bearer(token[:-2])).text,
    ]
    container.keys.revoke(key.id)
    bodies.append(secured.get("/v1/search", params={"q": "x"}, headers=bearer(token)).text)
    for text in (*bodies, caplog.text):
        assert secret not in text


def test_an_anonymous_readiness_probe_gets_the_verdict_not_the_details(
    secured: TestClient, container: Container
) -> None:
    """``/readyz`` is public; with auth required it named every tenant's document count and,
    on failure, error messages carrying server paths. Now: the verdict anonymously, the
    details to an admin key."""
    anonymous = secured.get("/readyz")
    body = anonymous.json()
    assert set(body) == {
        "ready",
        "degraded",
        "degraded_reason",
        "store",
        "model",
        "answer_path",
        "deployments",
    }
    assert set(body["store"]) <= {"ok", "code"} and "documents" not in body["store"]
    assert set(body["model"]) == {"loaded"} and set(body["answer_path"]) == {"wedged"}
    assert str(container.settings.home) not in anonymous.text
    query = container.keys.create("team-a", "query")[1]
    assert "documents" not in secured.get("/readyz", headers=bearer(query)).json()["store"]
    admin = container.keys.create("ops", "admin")[1]
    full = secured.get("/readyz", headers=bearer(admin)).json()
    assert full["store"]["documents"] >= 1 and "name" in full["model"]
    assert full["ready"] == body["ready"]

"""Cross-tenant canaries through the API (issue 11): auth required, tenants A and B seeded by
uploads that carry unique canary strings, then >= 2,000 probes as B and as anonymous — search
(every mode), query (extractive), chat, document list and delete by A's ids and guessed ids,
A's collection names, tenant keys smuggled into bodies, X-Tenant headers from a non-proxy key,
trace lists (with filters, ``tenant=team-a``, A's trace ids as paging cursors), A's trace ids,
their prefixes and case variants, and cost totals (a model only A used carries a canary).
Not one of A's canaries may appear in any of those responses, and A's documents are intact
afterwards. Also: uploads are kept per tenant (B's ``policy.md`` does not replace A's), and an
ACL change is seen on the next request. The real app, a real SQLite index, the hashing
embedder, the scripted model (answers extractive)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragkeel.api.public_ids import internal_id, load_key
from ragkeel.api.uploads import UploadArea
from ragkeel.container import Container
from ragkeel.types import AccessScope

from .conftest import auth_required_client

CANARY_A = ("CANARYAALPHA7Q", "CANARYABRAVO3Z", "CANARYACHARLIE9K")
CANARY_B = "CANARYBDELTA5M"
SHARED, SECRET = "handbook", "a-secret"  # A uses both; B only SHARED
TOPICS = ("password rotation policy", "vacation leave days", "incident escalation")
MIN_PROBES = 2000


def _doc(topic: str, canary: str) -> bytes:
    return (
        f"# {topic.title()}\n\nThe {topic} says: employees follow the {topic} and quote the code "
        f"{canary} when they ask about the {topic}. The {topic} is reviewed every year.\n"
    ).encode()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with auth_required_client(container) as c:
        yield c


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def upload(
    client: TestClient, token: str, collection: str, name: str, data: bytes, **form: Any
) -> list[str]:
    r = client.post(
        "/v1/documents",
        headers=bearer(token),
        data={"collection": collection, **form},
        files=[("files", (name, data, "text/markdown"))],
    )
    assert r.status_code == 200, r.text
    return [i for f in r.json()["files"] for i in f["document_ids"]]


def test_tenant_b_and_anonymous_never_see_tenant_a(
    client: TestClient, container: Container, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = container.keys
    a_ingest = keys.create("team-a", "ingest")[1]
    a_query = keys.create("team-a", "query")[1]
    b_ingest = keys.create("team-b", "ingest")[1]
    b_query = keys.create("team-b", "query")[1]
    b_admin = keys.create("team-b", "admin")[1]

    a_ids = upload(client, a_ingest, SHARED, "policy.md", _doc(TOPICS[0], CANARY_A[0]))
    a_ids += upload(client, a_ingest, SECRET, "leave.md", _doc(TOPICS[1], CANARY_A[1]))
    r = client.post(
        "/v1/documents",
        headers=bearer(a_ingest),
        json={"text": _doc(TOPICS[2], CANARY_A[2]).decode(), "id": "a-text", "collection": SHARED},
    )
    assert r.status_code == 200, r.text
    a_ids += r.json()["files"][0]["document_ids"]
    # B uploads a file of the same name into a collection of the same name
    b_ids = upload(client, b_ingest, SHARED, "policy.md", _doc(TOPICS[0], CANARY_B))

    # positive controls: each tenant finds its own canary (so the probes below can fail)
    def found(token: str, q: str, collection: str) -> str:
        r = client.get(
            "/v1/search", params={"q": q, "collection": collection}, headers=bearer(token)
        )
        assert r.status_code == 200, r.text
        return r.text

    assert CANARY_A[0] in found(a_query, TOPICS[0], SHARED)
    assert CANARY_B in found(b_query, TOPICS[0], SHARED)
    assert CANARY_A[0] not in found(b_query, TOPICS[0], SHARED)

    # A's traces and costs: A's answers quote its canaries; a model only A used names one
    a_traces = [
        client.post(
            "/v1/query",
            json={"question": topic, "collection": coll, "mode": "extractive"},
            headers=bearer(token),
        ).json()["trace_id"]
        for topic, coll in zip(TOPICS, (SHARED, SECRET, SHARED), strict=True)
        for token in (a_query, a_ingest)
    ]
    container.ledger.record(
        tenant="team-a",
        model=f"model-{CANARY_A[0]}",
        prompt_tokens=10,
        completion_tokens=2,
        cost=0.5,
        outcome="ok",
        ts=time.time(),
    )
    own = client.get(f"/v1/traces/{a_traces[0]}", headers=bearer(a_query))
    assert CANARY_A[0] in own.text  # positive controls: A reads its own
    assert a_traces[2] in client.get("/v1/traces", headers=bearer(a_query)).text
    assert CANARY_A[1] in client.get(f"/v1/traces/{a_traces[2]}", headers=bearer(a_query)).text
    assert CANARY_A[0] in client.get("/v1/costs", headers=bearer(a_query)).text
    forms = [form for t in a_traces for form in (t, t[:16], t[:12], t.upper(), t[:31])]
    trace_guesses = [*forms, "0" * 32, "f" * 16]

    home = str(container.settings.home.resolve())
    leaks: list[str] = []
    statuses: dict[int, int] = {}
    routes: dict[str, int] = {}  # probes per first path segment after /v1/
    probes = 0

    def probe(method: str, url: str, **kwargs: Any) -> None:
        nonlocal probes
        r = client.request(method, url, **kwargs)
        probes += 1
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        route = url.split("/")[2]
        routes[route] = routes.get(route, 0) + 1
        leaks.extend(f"{method} {url} {kwargs}: {c}" for c in CANARY_A if c in r.text)
        if home in r.text:  # no server path either (document ids are the service's)
            leaks.append(f"{method} {url} {kwargs}: the home path")

    guessed = [*a_ids, "a-text", "policy.md", "leave.md", "../policy.md", "text-0", "1", "%2e%2e"]
    collections = [None, SHARED, SECRET, "default", "team-a", "team-a/handbook", "*", ""]
    # guesses at A's canaries, not the canaries themselves: a response echoes its question
    guesses = [c[:-2] for c in CANARY_A]
    questions = [*TOPICS, *guesses, "code", "employees quote the code", "what is the policy"]
    callers = {
        "b-query": bearer(b_query),
        "b-admin": bearer(b_admin),
        "b-ingest": bearer(b_ingest),
        "anonymous": {},
        "b-x-tenant": bearer(b_query, **{"X-Tenant": "team-a"}),
        "b-x-principals": bearer(b_admin, **{"X-Principals": "alice"}),
        "bad-key": bearer("rk_0000000000000000_" + "0" * 43),
    }
    rounds = 0
    while probes < MIN_PROBES:
        rounds += 1
        for (name, headers), question, collection in itertools.product(
            callers.items(), questions, collections
        ):
            params: dict[str, Any] = {"q": question}
            body: dict[str, Any] = {"question": question, "mode": "extractive"}
            if collection is not None:
                params["collection"] = collection
                body["collection"] = collection
            for mode in ("bm25", "dense", "hybrid"):
                probe("GET", "/v1/search", params={**params, "mode": mode}, headers=headers)
            if name in ("b-query", "anonymous", "b-x-tenant") or rounds > 1:
                probe("POST", "/v1/query", json=body, headers=headers)
                probe(
                    "POST",
                    "/v1/query",  # widening attempts: unknown fields are refused (422)
                    json={**body, "tenant": "team-a", "filter": {"tenant": "team-a"}},
                    headers=headers,
                )
                chat = {
                    "model": "ragkeel",
                    "mode": "extractive",
                    "messages": [{"role": "user", "content": question}],
                    "tenant": "team-a",  # chat keeps unknown fields (OpenAI's); ignored
                    "filter": {"tenant": "team-a", "collection": SECRET},
                    **({"collection": collection} if collection is not None else {}),
                }
                probe("POST", "/v1/chat/completions", json=chat, headers=headers)
        for headers, collection in itertools.product(callers.values(), collections):
            coll = {"collection": collection} if collection else {}
            probe("GET", "/v1/documents", params=coll, headers=headers)
            for doc_id in guessed:
                probe("DELETE", f"/v1/documents/{doc_id}", params=coll, headers=headers)
        for headers in callers.values():  # trace and cost reads, trace-id guessing
            for params in (
                {"limit": 1000},
                {"tenant": "team-a", "limit": 1000},
                {"text": "code", "limit": 1000},
                {"outcome": "answered", "route": "/v1/query"},
                {"before": a_traces[-1]},
                {"before": "f" * 32, "tenant": "team-a"},
            ):
                probe("GET", "/v1/traces", params=params, headers=headers)
            for trace_id in trace_guesses:
                probe("GET", f"/v1/traces/{trace_id}", headers=headers)
            for params in ({"by": "model"}, {"by": "tenant"}, {"by": "day", "tenant": "team-a"}):
                probe("GET", "/v1/costs", params=params, headers=headers)

    print(
        f"cross-tenant probes: {probes}, leaks: {len(leaks)}, statuses: {sorted(statuses.items())}"
        f", per route: {sorted(routes.items())}"
    )
    assert probes >= MIN_PROBES
    assert leaks == []
    assert statuses.get(200, 0) > 500  # most probes were answered, not just refused

    # A's documents are intact: the same ids, every canary still found
    listed = {
        d["id"]
        for c in (SHARED, SECRET)
        for d in client.get(
            "/v1/documents", params={"collection": c}, headers=bearer(a_query)
        ).json()["documents"]
    }
    assert listed == set(a_ids)
    assert CANARY_A[1] in found(a_query, TOPICS[1], SECRET)
    assert CANARY_A[2] in found(a_query, TOPICS[2], SHARED)
    # uploads are kept per tenant: B's policy.md did not replace A's on disk
    assert CANARY_A[0] in found(a_query, TOPICS[0], SHARED)
    assert CANARY_B not in found(a_query, TOPICS[0], SHARED)
    assert b_ids and set(b_ids).isdisjoint(a_ids)
    policies = sorted((container.settings.home / "uploads").rglob("policy.md"))
    assert len(policies) == 2
    assert {p.read_bytes() for p in policies} == {
        _doc(TOPICS[0], CANARY_A[0]),
        _doc(TOPICS[0], CANARY_B),
    }
    with capsys.disabled():
        print(f"\ncross-tenant probes through the API: {probes}, canaries of A leaked: 0")


def test_an_acl_change_is_seen_on_the_next_request(
    client: TestClient, container: Container
) -> None:
    keys = container.keys
    ingest = keys.create("team-a", "ingest")[1]
    alice = keys.create("team-a", "query", principals=["alice"])[1]
    bob = keys.create("team-a", "query", principals=["bob"])[1]
    ids = upload(
        client,
        ingest,
        SHARED,
        "salaries.md",
        _doc("salary bands", "CANARYSALARY1X"),
        principals="alice, hr",
    )

    def sees(token: str) -> bool:
        r = client.get(
            "/v1/search", params={"q": "salary bands", "collection": SHARED}, headers=bearer(token)
        )
        listed = client.get("/v1/documents", params={"collection": SHARED}, headers=bearer(token))
        assert r.status_code == 200 and listed.status_code == 200
        in_list = any(d["id"] in ids for d in listed.json()["documents"])
        assert in_list == ("CANARYSALARY1X" in r.text)
        return in_list

    assert sees(alice) and not sees(bob)
    owner = AccessScope("team-a", all_principals=True)
    key = load_key(container.settings.home)
    internal = internal_id(container.store, key, owner, SHARED, ids[0])
    assert internal is not None
    assert container.store.set_principals(SHARED, internal, ["bob"], scope=owner)
    assert not sees(alice) and sees(bob)
    # a re-upload with another ACL is seen on the next request as well
    upload(
        client,
        ingest,
        SHARED,
        "salaries.md",
        _doc("salary bands", "CANARYSALARY1X"),
        principals=["alice"],
    )
    assert sees(alice) and not sees(bob)


def test_the_orphan_sweep_keeps_every_tenants_uploads(
    client: TestClient, container: Container
) -> None:
    b_ingest = container.keys.create("team-b", "ingest")[1]
    upload(client, b_ingest, SHARED, "policy.md", _doc(TOPICS[0], CANARY_B))
    (kept,) = (container.settings.home / "uploads").rglob("policy.md")
    area = UploadArea(container.settings.home / "uploads")
    assert area.remove_orphans(container.store) == []  # it used to see the default tenant's only
    assert kept.read_bytes() == _doc(TOPICS[0], CANARY_B)

"""``GET /v1/traces``, ``GET /v1/traces/{id}``, ``GET /v1/costs`` (issue 11, 12): the real app
over a real index and real trace/cost files, tenants from real keys. Auth off: the operator's
view (every trace, filters, paging, the full trace). Auth on: each key reads its own tenant's
traces and costs; another tenant's trace id or prefix is 404 like a missing one; an admin key
reads its tenant only and the operator's trusted-proxy admin key every tenant; a key that may
not read every document of its tenant gets traces without what its ACL hides."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragkeel.container import Container
from ragkeel.observability.trace_store import TraceFilter
from ragkeel.testing.contracts.trace_store import full_trace

from .conftest import COLLECTION, GOOD, OFF_TOPIC, ON_TOPIC, Api, auth_required_client
from .test_tenant_canaries import bearer, upload

PROBLEM = "application/problem+json"


def ask(
    client: TestClient, question: str, headers: dict[str, str] | None = None, **body: Any
) -> str:
    r = client.post("/v1/query", json={"question": question, **body}, headers=headers or {})
    assert r.status_code == 200, r.text
    trace_id = r.json()["trace_id"]
    assert isinstance(trace_id, str)
    return trace_id


def listed(client: TestClient, headers: dict[str, str] | None = None, **params: Any) -> list[str]:
    r = client.get("/v1/traces", params=params, headers=headers or {})
    assert r.status_code == 200, r.text
    return [t["id"] for t in r.json()["traces"]]


def test_the_operator_lists_filters_pages_and_reads_traces(client: TestClient, api: Api) -> None:
    start = time.time()
    on = ask(client, ON_TOPIC, collection=COLLECTION)
    off = ask(client, OFF_TOPIC)
    extractive = ask(client, ON_TOPIC, mode="extractive")
    r = client.post("/v1/query", json={"question": "x" * 5000})
    assert r.json()["code"] == "QUESTION_TOO_LONG"  # traced as an error
    assert listed(client)[1:] == [extractive, off, on]
    assert listed(client, outcome="cannot_answer") == [off]
    assert listed(client, outcome="error") == listed(client)[:1]
    assert listed(client, model="scripted") == [on]
    assert listed(client, text="ROTATE an api") == [extractive, on]  # the question, any case
    assert listed(client, text="ninety days")[-1] == on  # the output (the question has not)
    assert listed(client, since=start, until=start + 3600, outcome="answered") == [extractive, on]
    assert listed(client, until=start) == []
    page = client.get("/v1/traces", params={"limit": 2}).json()
    rest = client.get("/v1/traces", params={"limit": 2, "before": page["next_before"]}).json()
    assert [t["id"] for t in page["traces"] + rest["traces"]] == listed(client)
    assert rest["next_before"] is None or listed(client, before=rest["next_before"]) == []
    row = client.get("/v1/traces", params={"limit": 1, "outcome": "answered"}).json()["traces"][0]
    assert row["id"] == extractive and row["route"] == "/v1/query" and row["question"] == ON_TOPIC
    assert row["outcome"] == "answered" and row["created_at"].endswith("Z")

    trace = client.get(f"/v1/traces/{on}").json()
    assert trace["id"] == on and trace["output"] == GOOD and trace["withheld"] is None
    assert trace["model"] == "scripted" and trace["grounded"] is True
    assert trace["gate"]["passed"] is True and trace["latency_ms"]["total"] > 0
    assert trace["prompt"]["text"] and ON_TOPIC in trace["prompt"]["text"]
    top = trace["retrieved"][0]
    assert top["rank"] == 1 and top["stored"] is True and top["title"] == "API keys"
    assert "ninety days" in top["text"] and top["source"].endswith("keys.md")
    assert trace["citations"][0]["chunk_id"] == top["chunk_id"]
    # documents are named as in answers: service ids and file names, no server paths
    assert top["document_id"].startswith("doc_") and top["source"] == "keys.md"
    assert trace["citations"][0]["document_id"] == top["document_id"]
    raw = client.get(f"/v1/traces/{on}").text
    assert str(api.container.settings.home.parent) not in raw
    assert trace["gateway"]["served_by"] == "scripted"
    assert trace["attributes"]["gen_ai.request.model"] == "scripted"
    assert client.get(f"/v1/traces/{on[:12].upper()}").json()["id"] == on  # a prefix


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/v1/traces/" + "0" * 32, {}, 404, "TRACE_NOT_FOUND"),
        ("/v1/traces/0123456789", {}, 404, "TRACE_NOT_FOUND"),
        ("/v1/traces/not-an-id!", {}, 422, "VALIDATION_ERROR"),
        ("/v1/traces/abc", {}, 422, "VALIDATION_ERROR"),  # shorter than a prefix
        ("/v1/traces", {"outcome": "great"}, 422, "VALIDATION_ERROR"),
        ("/v1/traces", {"limit": 0}, 422, "VALIDATION_ERROR"),
        ("/v1/traces", {"limit": 1001}, 422, "VALIDATION_ERROR"),
        ("/v1/traces", {"since": "yesterday"}, 422, "VALIDATION_ERROR"),
        ("/v1/traces", {"since": "inf"}, 422, "VALIDATION_ERROR"),
        ("/v1/traces", {"since": 10, "until": 5}, 422, "TRACE_FILTER_INVALID"),
        ("/v1/traces", {"before": "zz"}, 422, "VALIDATION_ERROR"),
        ("/v1/traces", {"text": "x" * 201}, 422, "VALIDATION_ERROR"),
        ("/v1/costs", {"by": "week"}, 422, "VALIDATION_ERROR"),
        ("/v1/costs", {"since": 10, "until": 5}, 422, "TRACE_FILTER_INVALID"),
    ],
)
def test_bad_ids_and_filters_are_problems_with_stable_codes(
    client: TestClient, path: str, params: dict[str, Any], status: int, code: str
) -> None:
    r = client.get(path, params=params)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.headers["content-type"].startswith(PROBLEM)


def test_an_ambiguous_prefix_is_a_problem(client: TestClient, api: Api) -> None:
    for suffix in "ab":
        api.container.traces.record(full_trace(id="feedfacefeedface" + suffix * 16))
    r = client.get("/v1/traces/feedfacefeedface")
    assert (r.status_code, r.json()["code"]) == (422, "TRACE_ID_AMBIGUOUS")
    assert client.get("/v1/traces/feedfacefeedfaceb").json()["id"].endswith("b" * 16)


# -- auth on: tenants -------------------------------------------------------------------------


@pytest.fixture
def secure(container: Container) -> Iterator[TestClient]:
    with auth_required_client(container) as c:
        yield c


def _doc(text: str) -> bytes:
    return f"# Keys\n\n{text}\n".encode()


def test_each_key_reads_its_own_tenants_traces_and_costs(
    secure: TestClient, container: Container
) -> None:
    keys = container.keys
    a_ingest, a_query, a_admin = (keys.create("team-a", s)[1] for s in ("ingest", "query", "admin"))
    b_ingest, b_query, b_admin = (keys.create("team-b", s)[1] for s in ("ingest", "query", "admin"))
    operator = keys.create("ops", "admin", trusted_proxy=True)[1]
    upload(secure, a_ingest, "kb", "a.md", _doc("Rotate API keys every ninety days (team A)."))
    upload(secure, b_ingest, "kb", "b.md", _doc("Rotate API keys every week (team B)."))
    a1 = ask(secure, ON_TOPIC, bearer(a_query), mode="extractive")
    a2 = ask(secure, "When are API keys rotated?", bearer(a_admin), mode="extractive")
    b1 = ask(secure, ON_TOPIC, bearer(b_query), mode="extractive")
    too_long = secure.post("/v1/query", json={"question": "y" * 5000}, headers=bearer(b_query))
    assert too_long.json()["code"] == "QUESTION_TOO_LONG"  # B's failed request: B's trace
    (b_error,) = container.traces.search(_every(outcome="error"))
    assert b_error.tenant == "team-b" and b_error.id in listed(secure, bearer(b_query))

    assert set(listed(secure, bearer(a_query))) == {a1, a2}
    assert set(listed(secure, bearer(a_admin))) == {a1, a2}  # a tenant's admin: its tenant
    assert b1 in listed(secure, bearer(b_query)) and a1 not in listed(secure, bearer(b_admin))
    assert listed(secure, bearer(b_query), tenant="team-a") == []  # narrows, never widens
    every = set(listed(secure, bearer(operator)))
    assert {a1, a2, b1} <= every
    assert set(listed(secure, bearer(operator), tenant="team-a")) == {a1, a2}
    # the operator's key speaking for an end user reads as that user's tenant
    as_user = bearer(operator, **{"X-Tenant": "team-b"})
    assert a1 not in listed(secure, as_user) and b1 in listed(secure, as_user)

    for caller in (b_query, b_admin, b_ingest):
        for guess in (a1, a1[:16], a1.upper()):
            r = secure.get(f"/v1/traces/{guess}", headers=bearer(caller))
            assert (r.status_code, r.json()["code"]) == (404, "TRACE_NOT_FOUND"), guess
        # 8 digits are about the millisecond: B's own traces of that moment may share them
        r = secure.get(f"/v1/traces/{a1[:8]}", headers=bearer(caller))
        assert r.status_code in (200, 404, 422) and "team A" not in r.text
    assert secure.get(f"/v1/traces/{a1}").status_code == 401  # anonymous
    assert (
        secure.get("/v1/traces").status_code == 401 and secure.get("/v1/costs").status_code == 401
    )
    mine = secure.get(f"/v1/traces/{a1}", headers=bearer(a_query)).json()
    assert mine["tenant"] == "team-a" and "team A" in mine["output"]
    assert secure.get(f"/v1/traces/{b1}", headers=bearer(operator)).json()["tenant"] == "team-b"

    ledger = container.ledger
    now = time.time()
    for tenant, model, cost in (
        ("team-a", "gpt", 0.5),
        ("team-a", "mini", 0.25),
        ("team-b", "gpt", 2.0),
    ):
        ledger.record(
            tenant=tenant,
            model=model,
            prompt_tokens=10,
            completion_tokens=2,
            cost=cost,
            outcome="ok",
            ts=now,
        )

    def costs(token: str, **params: Any) -> dict[str, Any]:
        r = secure.get("/v1/costs", params=params, headers=bearer(token))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    a_costs = costs(a_query)
    assert [(t["key"], t["cost"]) for t in a_costs["totals"]] == [("gpt", 0.5), ("mini", 0.25)]
    assert a_costs["total"]["cost"] == 0.75 and a_costs["total"]["calls"] == 2
    assert [t["key"] for t in costs(b_admin, by="tenant")["totals"]] == ["team-b"]
    assert costs(b_query, tenant="team-a")["totals"] == []
    assert {t["key"] for t in costs(operator, by="tenant")["totals"]} == {"team-a", "team-b"}
    assert costs(operator, by="tenant", tenant="team-b")["total"]["cost"] == 2.0
    assert costs(operator, since=now + 1)["totals"] == []
    assert costs(operator, by="day")["totals"][0]["calls"] == 3


def _every(**where: Any) -> TraceFilter:
    return TraceFilter(tenants=None, **where)


def test_a_trace_shows_only_what_the_readers_acl_allows(
    secure: TestClient, container: Container
) -> None:
    keys = container.keys
    ingest = keys.create("team-a", "ingest")[1]
    admin = keys.create("team-a", "admin")[1]
    alice = keys.create("team-a", "query", principals=["alice"])[1]
    bob = keys.create("team-a", "query", principals=["bob"])[1]
    upload(
        secure,
        ingest,
        "kb",
        "salaries.md",
        _doc("Salary bands: CANARYSALARY1X."),
        principals="alice",
    )
    upload(secure, ingest, "kb", "public.md", _doc("Salary reviews happen in March."))
    asked = ask(secure, "What are the salary bands?", bearer(alice), mode="extractive")

    own = secure.get(f"/v1/traces/{asked}", headers=bearer(alice)).json()
    assert own["withheld"] is None and "CANARYSALARY1X" in own["output"]
    assert any("CANARYSALARY1X" in (h["text"] or "") for h in own["retrieved"])
    full = secure.get(f"/v1/traces/{asked}", headers=bearer(admin)).json()
    assert full["withheld"] is None and "CANARYSALARY1X" in full["output"]

    r = secure.get(f"/v1/traces/{asked}", headers=bearer(bob))  # same tenant, not on the ACL
    assert r.status_code == 200 and "CANARYSALARY1X" not in r.text
    hidden = r.json()
    assert hidden["withheld"]["chunks"] >= 1 and hidden["output"] is None
    assert all("salaries" not in (h["source"] or "") for h in hidden["retrieved"])
    assert len(hidden["retrieved"]) == len(full["retrieved"]) - hidden["withheld"]["chunks"]

"""``GET /metrics`` after real requests through the app, parsed with the client library's own
parser: requests by route and outcome, stage latencies, tokens and cost, gateway attempts and
breaker states over FaultServers on 127.0.0.1, admission and auth refusals, index sizes; who
may scrape (``observability.metrics``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from corpus import TEST_GATE
from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer

from .conftest import COLLECTION, GOOD, OFF_TOPIC, ON_TOPIC, api_settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, **kwargs: Any) -> Samples:
    r = client.get("/metrics", **kwargs)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        assert family.name.startswith("ragkeel_"), family.name
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def _app(container: Container, script: Any = (GOOD,), **kwargs: Any) -> Any:
    model = ScriptedChatModel(script)
    answerer = Answerer(container.retriever, model, AnswerPolicy(gate_threshold=TEST_GATE))
    return create_app(container, answerer=answerer, **kwargs)


def test_requests_latencies_and_index_after_real_requests(container: Container) -> None:
    script = (GOOD, ScriptedFailure("timeout"), GOOD)
    with TestClient(_app(container, script)) as c:
        before = scrape(c)
        ask = {"question": ON_TOPIC, "collection": COLLECTION}
        assert c.post("/v1/query", json=ask).json()["mode"] == "generative"
        assert c.post("/v1/query", json=ask).json()["degraded"] is True
        assert c.post("/v1/query", json={**ask, "stream": True}).status_code == 200
        assert c.post("/v1/query", json={"question": OFF_TOPIC}).json()["mode"] == "cannot_answer"
        assert c.post("/v1/query", json={"question": " "}).status_code == 422
        chat = {"model": "ragkeel", "messages": [{"role": "user", "content": ON_TOPIC}]}
        assert c.post("/v1/chat/completions", json={**chat, "collection": COLLECTION}).is_success
        after = scrape(c)
        stats = container.store.stats()
    assert total(before, "ragkeel_requests_total") == 0
    for route, outcome, n in (
        ("/v1/query", "answered", 2),
        ("/v1/query", "degraded", 1),
        ("/v1/query", "cannot_answer", 1),
        ("/v1/query", "error", 1),
        ("/v1/chat/completions", "answered", 1),
    ):
        assert value(after, "ragkeel_requests_total", route=route, outcome=outcome) == n
    for stage in ("retrieve", "first_token", "total"):
        count = value(after, "ragkeel_stage_duration_seconds_count", route="/v1/query", stage=stage)
        assert count >= 2, stage
    totals = value(after, "ragkeel_stage_duration_seconds_count", route="/v1/query", stage="total")
    assert totals == 5  # every request, the refused question included
    assert total(after, "ragkeel_tokens_total", model="scripted", direction="input") > 0
    assert total(after, "ragkeel_retrieval_top_score_count", signal="dense") >= 4
    grounded = value(after, "ragkeel_answer_grounded_count", route="/v1/query")
    assert grounded == 3  # answered and degraded ones; not the refusal, not the error
    docs = value(after, "ragkeel_index_documents", tenant="default", collection=COLLECTION)
    chunks = value(after, "ragkeel_index_chunks", tenant="default", collection=COLLECTION)
    assert (docs, chunks) == (stats.documents, stats.chunks) and docs > 0


def test_refusals_that_record_no_trace_are_counted(container: Container) -> None:
    _, admin = container.keys.create("ops", "admin", trusted_proxy=True)  # the operator's
    _, query = container.keys.create("ops", "query")
    app = _app(container, host="0.0.0.0")  # api.auth auto on a network address: keys required
    with TestClient(app) as c:
        assert c.post("/v1/query", json={"question": ON_TOPIC}).status_code == 401
        bad = {"Authorization": "Bearer rk_nope_nope"}
        assert c.post("/v1/query", json={"question": ON_TOPIC}, headers=bad).status_code == 401
        assert c.get("/metrics", headers={"Authorization": f"Bearer {query}"}).status_code == 403
        app.state.ragkeel.draining = True
        r = c.post("/v1/query", json={"question": ON_TOPIC}, headers=bearer(query))
        assert r.status_code == 503
        app.state.ragkeel.draining = False
        samples = scrape(c, headers=bearer(admin))
    assert value(samples, "ragkeel_auth_failures_total", code="UNAUTHENTICATED") == 2
    assert value(samples, "ragkeel_auth_failures_total", code="FORBIDDEN") == 1
    assert value(samples, "ragkeel_admission_rejections_total", reason="shutting_down") == 1
    assert total(samples, "ragkeel_requests_total") == 0  # none of them was an answer


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_tenant_over_its_limit_is_counted(tmp_path: Path, corpus: Path) -> None:
    settings = api_settings(tmp_path / "home")
    settings = load_settings(
        home=tmp_path / "home",
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
        generation={"gate_threshold": TEST_GATE},
        gateway={"limits": {"requests_per_minute": 1}},
    )
    with Container(settings) as container:
        assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
        with TestClient(_app(container)) as c:
            codes = [c.post("/v1/query", json={"question": ON_TOPIC}).status_code for _ in range(3)]
            samples = scrape(c)
    assert codes == [200, 429, 429]
    assert value(samples, "ragkeel_admission_rejections_total", reason="tenant_limit") == 2


def test_gateway_attempts_cost_and_breaker_states(
    tmp_path: Path, corpus: Path, servers: tuple[FaultServer, FaultServer]
) -> None:
    primary, backup = servers
    primary.set(down=True)
    settings = load_settings(
        home=tmp_path / "home",
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
        generation={"gate_threshold": TEST_GATE, "provider": "openai"},
        gateway={
            "deployments": [
                {"name": f"d{i}", "model": "gpt-4o-mini", "base_url": s.base_url, "timeout_s": 5}
                for i, s in enumerate((primary, backup))
            ],
            "retry": {"max_retries": 1, "base_delay_s": 0.001, "max_delay_s": 0.002},
            "breaker": {"consecutive_failures": 2, "open_s": 60, "max_open_s": 60},
        },
    )
    with Container(settings) as container:
        assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
        with TestClient(create_app(container)) as c:
            for _ in range(3):  # "cache": false: each one to the gateway (issue 14)
                body = {"question": ON_TOPIC, "collection": COLLECTION, "cache": False}
                r = c.post("/v1/query", json=body)
                assert r.json()["served_by"] == "d1"
            samples = scrape(c)
    assert value(samples, "ragkeel_gateway_attempts_total", deployment="d0", outcome="error") == 2
    assert (
        value(samples, "ragkeel_gateway_attempts_total", deployment="d0", outcome="rejected") == 2
    )
    assert value(samples, "ragkeel_gateway_attempts_total", deployment="d1", outcome="ok") == 3
    assert value(samples, "ragkeel_breaker_state", deployment="d0", state="open") == 1
    assert value(samples, "ragkeel_breaker_state", deployment="d0", state="closed") == 0
    assert value(samples, "ragkeel_breaker_state", deployment="d1", state="closed") == 1
    # the model label is what answered (the deployment); the tenant, whose budget it was
    cost = value(samples, "ragkeel_cost_usd_total", model="d1", tenant="anonymous")
    assert cost > 0
    assert total(samples, "ragkeel_tokens_total", model="d1", direction="output") > 0


@pytest.mark.parametrize(
    ("access", "anonymous", "query_key", "admin_key"),
    [("auto", 401, 403, 200), ("public", 200, 200, 200), ("off", 401, 404, 404)],
)
def test_who_may_scrape_with_keys_required(
    tmp_path: Path,
    corpus: Path,
    access: str,
    anonymous: int,
    query_key: int,
    admin_key: int,
) -> None:
    settings = load_settings(
        home=tmp_path / "home",
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        observability={"metrics": access},
    )
    with Container(settings) as container:
        _, admin = container.keys.create("ops", "admin", trusted_proxy=True)  # the operator's
        _, query = container.keys.create("ops", "query")
        _, tenant_admin = container.keys.create("team-b", "admin")
        with TestClient(_app(container, host="0.0.0.0")) as c:
            got = (
                c.get("/metrics").status_code,
                c.get("/metrics", headers=bearer(query)).status_code,
                c.get("/metrics", headers=bearer(admin)).status_code,
            )
            # every tenant's tokens and cost: not for a tenant's own admin key
            tenant_admin_got = c.get("/metrics", headers=bearer(tenant_admin)).status_code
    assert got == (anonymous, query_key, admin_key)
    assert tenant_admin_got == {"auto": 403, "public": 200, "off": 404}[access]


def test_with_keys_off_metrics_are_open_unless_off(tmp_path: Path) -> None:
    for access, status in (("auto", 200), ("off", 404)):
        settings = load_settings(
            home=tmp_path / access,
            embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
            observability={"metrics": access},
        )
        with Container(settings) as container, TestClient(_app(container)) as c:
            assert c.get("/metrics").status_code == status


def test_embedding_cache_lookups_are_counted(tmp_path: Path, corpus: Path) -> None:
    settings = load_settings(
        home=tmp_path / "home",
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": True},
        ingestion={"chunk_tokens": 64},
        generation={"gate_threshold": TEST_GATE},
    )
    with Container(settings) as container:
        assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
        with TestClient(_app(container)) as c:
            body = {"question": ON_TOPIC, "collection": COLLECTION, "mode": "extractive"}
            assert c.post("/v1/query", json=body).status_code == 200
            first = scrape(c)
            assert c.post("/v1/query", json=body).status_code == 200  # the same query text
            second = scrape(c)
    hits = [
        value(s, "ragkeel_embedding_cache_lookups_total", result="hit") for s in (first, second)
    ]
    misses = [
        value(s, "ragkeel_embedding_cache_lookups_total", result="miss") for s in (first, second)
    ]
    assert misses[0] > 0 and misses[1] == misses[0]  # ingestion's chunks and the first query
    assert hits[1] == hits[0] + 1  # the repeated question's embedding came from the cache

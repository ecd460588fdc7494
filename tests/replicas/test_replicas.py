"""Issue 13, "Stateless replicas": two ``ragkeel serve`` processes (``ragkeel.testing.replicas``:
real subprocesses on free loopback ports, stopped by PID) behave as one service.

- a tenant's rate limit holds across replicas (Redis: ``redis.url``);
- a breaker opened by failures seen on replica A routes replica B to the fallback (Redis);
- 100 concurrent requests spread over the replicas never overspend a budget (Redis accounts);
- a document ingested through A is searchable through B within one second (one shared index:
  the SQLite file of a shared home today, PostgreSQL with ``storage.backend: postgres``).

The providers are fakes on 127.0.0.1 (``FaultServer``); PostgreSQL and Redis are the real
servers of ``tests/conftest.py``. A test whose setting has not landed yet (``redis.url``, the
PostgreSQL store: built in parallel on their own branches) is skipped with the reason, never
run against a replica that ignores the setting."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from corpus import COLLECTION, ON_TOPIC, TEST_GATE, write_corpus
from ragkeel.container import Container
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer, FaultSettings
from ragkeel.testing.replicas import Replica, Replicas

PAID = "paid-model"
BASE_ENV = {
    "RAGKEEL_EMBEDDING__PROVIDER": "hashing",
    "RAGKEEL_EMBEDDING__HASHING_DIMENSION": "256",
    "RAGKEEL_EMBEDDING__CACHE": "false",
    "RAGKEEL_INGESTION__CHUNK_TOKENS": "64",
    "RAGKEEL_GENERATION__GATE_THRESHOLD": str(TEST_GATE),
    "RAGKEEL_MONITOR__ENABLED": "false",
    "RAGKEEL_GATEWAY__RETRY__MAX_RETRIES": "0",
}


def _indexed_home(root: Path, docs: Path) -> Path:
    settings = load_settings(
        home=root,
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
    )
    with Container(settings) as c:
        assert c.pipeline.ingest([str(docs)], COLLECTION).exit_code == 0
    return root


@pytest.fixture
def homes(tmp_path: Path) -> tuple[Path, Path]:
    """Two homes with the same small index: each replica has its own files, so whatever they
    agree on went through the shared servers."""
    a = _indexed_home(tmp_path / "home-a", write_corpus(tmp_path / "docs"))
    b = tmp_path / "home-b"
    shutil.copytree(a, b)
    return a, b


def _each(homes: tuple[Path, Path]) -> list[dict[str, str]]:
    return [{"RAGKEEL_HOME": str(h)} for h in homes]


def _deployments(*pairs: tuple[str, str]) -> str:
    return json.dumps([{"name": n, "model": n, "base_url": url} for n, url in pairs])


def _ask(replica: Replica, question: str = ON_TOPIC) -> httpx.Response:
    return httpx.post(f"{replica.url}/v1/query", json={"question": question}, timeout=60)


def test_a_tenants_rate_limit_holds_across_replicas(
    homes: tuple[Path, Path], redis_url: str, tmp_path: Path
) -> None:
    with FaultServer() as provider:
        env = {
            **BASE_ENV,
            "RAGKEEL_REDIS__URL": redis_url,
            "RAGKEEL_GENERATION__PROVIDER": "openai",
            "RAGKEEL_GENERATION__OPENAI__BASE_URL": provider.base_url,
            "RAGKEEL_GATEWAY__LIMITS__REQUESTS_PER_MINUTE": "4",
        }
        with Replicas(2, env, each=_each(homes), log_dir=tmp_path / "logs") as (a, b):
            got = [_ask(r) for r in (a, b) * 4]  # alternating: 8 requests, one tenant
    codes = [r.status_code for r in got]
    assert codes.count(200) == 4, codes  # per replica alone, all 8 would pass
    refused = [r.json() for r in got if r.status_code == 429]
    assert len(refused) == 4 and all(p["code"] == "RATE_LIMITED" for p in refused), refused


def test_a_breaker_opened_on_replica_a_routes_replica_b_to_the_fallback(
    homes: tuple[Path, Path], redis_url: str, tmp_path: Path
) -> None:
    with (
        FaultServer(FaultSettings(error_rate=1.0, error="500")) as primary,
        FaultServer() as fallback,
    ):
        env = {
            **BASE_ENV,
            "RAGKEEL_REDIS__URL": redis_url,
            "RAGKEEL_GENERATION__PROVIDER": "openai",
            "RAGKEEL_GATEWAY__DEPLOYMENTS": _deployments(
                ("primary", primary.base_url), ("fallback", fallback.base_url)
            ),
            "RAGKEEL_GATEWAY__BREAKER__CONSECUTIVE_FAILURES": "2",
            "RAGKEEL_GATEWAY__BREAKER__OPEN_S": "120",
        }
        with Replicas(2, env, each=_each(homes), log_dir=tmp_path / "logs") as (a, b):
            for _ in range(3):  # the primary fails twice: A's breaker opens
                r = _ask(a)
                assert r.status_code == 200 and r.json()["served_by"] == "fallback", r.text
            primary.reset_stats()
            r = _ask(b)
            assert r.status_code == 200, r.text
            assert r.json()["served_by"] == "fallback", r.json()
            # B never tried the primary: it saw the breaker A opened
            assert primary.stats.requests == 0, primary.stats


def test_concurrent_requests_over_replicas_never_overspend_a_budget(
    homes: tuple[Path, Path], redis_url: str, tmp_path: Path
) -> None:
    limit = 0.05  # USD per tenant per day: a handful of answers at this price
    with FaultServer() as provider:
        env = {
            **BASE_ENV,
            "RAGKEEL_REDIS__URL": redis_url,
            "RAGKEEL_GENERATION__PROVIDER": "openai",
            "RAGKEEL_GATEWAY__DEPLOYMENTS": _deployments((PAID, provider.base_url)),
            "RAGKEEL_GENERATION__PRICES": json.dumps(
                {PAID: {"input_per_mtok": 20.0, "output_per_mtok": 60.0}}
            ),
            "RAGKEEL_GATEWAY__LIMITS__COST_PER_DAY": str(limit),
            "RAGKEEL_GATEWAY__LIMITS__MAX_IN_FLIGHT": "200",
        }
        with Replicas(2, env, each=_each(homes), log_dir=tmp_path / "logs") as replicas:

            def ask(i: int) -> httpx.Response:
                return _ask(replicas[i % 2])

            with ThreadPoolExecutor(20) as pool:
                got = list(pool.map(ask, range(100)))
    assert all(r.status_code in (200, 429) for r in got), [
        r.text for r in got if r.status_code >= 500
    ]
    # what the paid deployment charged (an extractive answer's own cost field is not a charge)
    paid = [r.json()["cost"] for r in got if r.status_code == 200 and r.json()["served_by"] == PAID]
    assert paid, "no answer was paid for: the test did not exercise the budget"
    assert sum(paid) <= limit + 1e-9, f"{len(paid)} paid answers, {sum(paid):.4f} USD > {limit}"


def _search_until_found(replica: Replica, text: str, within_s: float) -> float | None:
    """Seconds until ``replica`` finds ``text`` (searched as bm25), or None past ``within_s``."""
    started = time.monotonic()
    while (waited := time.monotonic() - started) <= within_s:
        r = httpx.get(
            f"{replica.url}/v1/search",
            params={"q": text, "mode": "bm25", "collection": "fresh", "k": 3},
            timeout=5,
        )
        if r.status_code == 200 and r.json()["hits"]:
            return waited
        time.sleep(0.02)
    return None


@pytest.fixture(params=["sqlite-shared-home", "postgres"])
def shared_index_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The settings that make two replicas share one index."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        yield {"RAGKEEL_STORAGE__BACKEND": "postgres", "RAGKEEL_STORAGE__POSTGRES__URL": url}
    else:
        yield {"RAGKEEL_HOME": str(tmp_path / "shared-home")}


def test_a_document_ingested_through_a_is_searchable_through_b_within_one_second(
    shared_index_env: dict[str, str], tmp_path: Path
) -> None:
    env: dict[str, Any] = {**BASE_ENV, "RAGKEEL_GENERATION__PROVIDER": "none", **shared_index_env}
    each = [] if "RAGKEEL_HOME" in shared_index_env else _each((tmp_path / "a", tmp_path / "b"))
    text = "Quokka fermentation schedules are reviewed every fortnight by the zymurgy desk."
    with Replicas(2, env, each=each, log_dir=tmp_path / "logs") as (a, b):
        assert _search_until_found(b, "quokka zymurgy", within_s=0) is None  # not there yet
        r = httpx.post(
            f"{a.url}/v1/documents",
            params={"collection": "fresh"},
            json={"id": "quokka", "title": "Quokka", "text": text},
            timeout=60,
        )
        assert r.status_code in (200, 201), r.text
        waited = _search_until_found(b, "quokka zymurgy", within_s=1.0)
    assert waited is not None, "B did not find the document A ingested within 1 s"

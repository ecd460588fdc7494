"""The HTTP API fuzzed from its own OpenAPI schema with schemathesis (issue 11): valid and
invalid requests for every operation (bodies, query and path parameters, multipart uploads,
headers), sent to the real app over ASGI, over a small seeded store with the scripted chat model.

Every response must be below 500, and every error (4xx) must be ``application/problem+json``
with a stable upper-case ``code`` and its own status. Afterwards the service is healthy:
``/healthz`` and ``/readyz`` answer 200, the seeded documents are all still there, and a normal
question still gets a cited answer.

Bounded for ``make test`` (``FUZZ_EXAMPLES`` per operation, no shrinking, no example database);
``test_fuzz_deep`` (``slow``) runs ``DEEP_EXAMPLES`` per operation. The number of cases each run
sent is counted in ``SENT`` and printed by the health check (docs/benchmarks.md records it).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from corpus import COLLECTION, CORPUS, ON_TOPIC, TEST_GATE, write_corpus
from ragkeel.api import create_app
from ragkeel.api.routes import ROUTERS
from ragkeel.container import Container
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy

from .conftest import GOOD, api_settings, serve

FUZZ_EXAMPLES = 60  # per operation and mode: ~720 cases, about a minute on a loaded 2-core box
DEEP_EXAMPLES = 500  # per operation and mode: ~15 min on a loaded 2-core box
CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")
SENT: Counter[str] = Counter()  # cases sent per run ("default" / "deep")


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, str]]:
    """The app under uvicorn on 127.0.0.1 (one lifespan for the whole fuzz), and its URL."""
    root = tmp_path_factory.mktemp("fuzz")
    container = Container(api_settings(root / "home"))
    report = container.pipeline.ingest([str(write_corpus(root / "docs"))], COLLECTION)
    assert report.exit_code == 0, report.to_dict()
    answerer = Answerer(
        container.retriever, ScriptedChatModel((GOOD,)), AnswerPolicy(gate_threshold=TEST_GATE)
    )
    app = create_app(container, answerer=answerer)
    with serve(app) as url:
        yield app, url


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_app: tuple[FastAPI, str]) -> Any:
    app, url = fuzz_app
    return schemathesis.openapi.from_dict(app.openapi()), url


FAST = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same cases on every run: a failure reproduces
    phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time
    suppress_health_check=list(HealthCheck),
)


def _operations() -> list[tuple[str, str]]:
    """(method, OpenAPI path) of every route, from the routers themselves."""
    out = []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            path = re.sub(r"\{(\w+):path\}", r"{\1}", route.path)
            out += [(method, path) for method in sorted(route.methods)]
    return out


OPERATIONS = _operations()
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


def fuzz(fuzz_schema: Any, method: str, path: str, run: str, examples: int) -> None:
    """``examples`` cases per generation mode (valid, then invalid) sent to the operation
    (invalid only where there is something to get wrong: parameters or a body)."""
    schema, url = fuzz_schema
    raw = schema.raw_schema["paths"][path][method.lower()]
    takes_input = bool(raw.get("parameters") or raw.get("requestBody"))
    operation = schema[path][method]
    for mode in MODES if takes_input else MODES[:1]:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(FAST, max_examples=examples)
        def one(case: Any) -> None:
            check_response(case, url, run)

        one()


def check_response(case: Any, url: str, run: str) -> None:
    SENT[run] += 1
    response = case.call(base_url=url, timeout=30)
    status = response.status_code
    where = f"{case.method} {case.formatted_path} -> {status}: {response.text[:500]}"
    assert status < 500, where
    if status >= 400:
        (content_type,) = response.headers["content-type"]  # schemathesis: a list per header
        assert content_type == "application/problem+json", where
        body = response.json()
        assert isinstance(body.get("code"), str) and CODE.match(body["code"]), where
        assert body["code"] != f"HTTP_{status}", where  # a stable code, not the generic one
        assert body.get("status") == status, where


def test_every_route_is_fuzzed(fuzz_schema: Any) -> None:
    paths = fuzz_schema[0].raw_schema["paths"]
    documented = {(m.upper(), p) for p, ops in paths.items() for m in ops}
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_fuzz(fuzz_schema: Any, method: str, path: str) -> None:
    fuzz(fuzz_schema, method, path, "default", FUZZ_EXAMPLES)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_fuzz_deep(fuzz_schema: Any, method: str, path: str) -> None:
    fuzz(fuzz_schema, method, path, "deep", DEEP_EXAMPLES)


def test_the_service_is_healthy_after_the_fuzz(fuzz_app: tuple[FastAPI, str]) -> None:
    """Runs after the fuzz (same module-scoped server)."""
    print(f"fuzz cases sent: {dict(SENT)}")
    assert sum(SENT.values()) > 0, "the fuzz ran no case"
    with httpx.Client(base_url=fuzz_app[1], timeout=30) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"], ready.text
        listed = client.get("/v1/documents", params={"collection": COLLECTION, "limit": 100})
        sources = {Path(d["source"]).name for d in listed.json()["documents"]}
        assert set(CORPUS) <= sources, sources  # nothing seeded was lost
        r = client.post("/v1/query", json={"question": ON_TOPIC, "collection": COLLECTION})
        assert r.status_code == 200, r.text
        assert r.json()["citations"], r.json()

"""The spans land in a real receiver (issue 12): Arize Phoenix, from PyPI in a virtual environment
of its own (``scripts/phoenix-venv.sh``, pinned; its dependencies would clash with ours), runs on
127.0.0.1 with a private working directory and telemetry off. ragkeel's API, over a real gateway
(a ``FaultServer`` deployment on 127.0.0.1), exports to Phoenix's OTLP/HTTP endpoint; the spans
are read back through Phoenix's REST API (``GET /v1/projects/{project}/spans``): the retrieval
documents, the model, the token counts and the cost are there, in the kinds Phoenix shows.

Marked ``phoenix``: it runs in the default suite (about a minute once the venv exists; the first
run installs Phoenix, a few minutes)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from corpus import COLLECTION, ON_TOPIC, TEST_GATE, write_corpus
from ragkeel.api.app import create_app
from ragkeel.container import Container
from ragkeel.observability import names
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer

pytestmark = [pytest.mark.phoenix, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
PROJECT = "ragkeel-phoenix-test"  # observability.otlp.service_name: Phoenix's project
REPLY = "Rotate every API key every ninety days [1]."
STARTUP_S = 180.0  # Phoenix migrates its SQLite database first: ~30 s on a loaded machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Phoenix's base URL, running for the module's tests."""
    made = subprocess.run(
        [str(REPO / "scripts" / "phoenix-venv.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert made.returncode == 0, f"scripts/phoenix-venv.sh failed:\n{made.stderr[-3000:]}"
    python = made.stdout.strip().splitlines()[-1]
    work = tmp_path_factory.mktemp("phoenix")
    port = _free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(work),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(_free_port()),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
        "PHOENIX_ALLOWED_SANDBOX_PROVIDERS": "NONE",
    }
    log = (work / "phoenix.log").open("w")
    server = subprocess.Popen(
        [python, "-m", "phoenix.server.main", "serve"],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert server.poll() is None, (work / "phoenix.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "Phoenix did not start in time"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()


def _spans(base: str, want: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """The project's spans once at least ``want`` are there (Phoenix ingests asynchronously)."""
    deadline = time.monotonic() + timeout_s
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        r = httpx.get(f"{base}/v1/projects/{PROJECT}/spans", params={"limit": 1000}, timeout=10)
        if r.status_code == 200:
            spans = r.json()["data"]
            if len(spans) >= want:
                return spans
        time.sleep(0.5)
    raise AssertionError(f"Phoenix has {len(spans)} spans of {want}: {spans}")


def test_phoenix_reads_back_the_retrieval_the_model_the_tokens_and_the_cost(
    phoenix: str, tmp_path: Path
) -> None:
    with FaultServer(seed=2) as provider:
        provider.set(reply=REPLY)
        settings = load_settings(
            home=tmp_path / "home",
            embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
            ingestion={"chunk_tokens": 64},
            generation={"gate_threshold": TEST_GATE, "provider": "openai"},
            gateway={
                "deployments": [
                    {"name": "d0", "model": "gpt-4o-mini", "base_url": provider.base_url}
                ]
            },
            observability={"otlp": {"endpoint": f"{phoenix}/v1/traces", "service_name": PROJECT}},
            cache={"enabled": False},  # each request's model call and spans (issue 14)
        )
        container = Container(settings)
        corpus = write_corpus(tmp_path / "docs")
        assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
        with TestClient(create_app(container)) as client:
            query = {"question": ON_TOPIC, "collection": COLLECTION}
            answers = [client.post("/v1/query", json=query).json() for _ in range(2)]
            chat = client.post(
                "/v1/chat/completions",
                json={"model": "ragkeel", "messages": [{"role": "user", "content": ON_TOPIC}]},
            )
            assert chat.status_code == 200, chat.text
            assert container.tracer.flush(10)
    assert all(a["mode"] == "generative" for a in answers)

    spans = _spans(phoenix, want=3 * 5)  # root, retrieve, embed, pack, chat per request
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_kind.setdefault(span["span_kind"], []).append(span)
    assert {"CHAIN", "RETRIEVER", "EMBEDDING", "LLM"} <= set(by_kind)

    roots = [s for s in spans if s["parent_id"] is None]
    assert len(roots) == 3
    ids = {s["attributes"].get(names.TRACE_ID) for s in roots}
    assert {a["trace_id"] for a in answers} <= ids

    retrievers = by_kind["RETRIEVER"]
    assert len(retrievers) == 3
    docs = _documents(retrievers[0]["attributes"])
    assert docs and all(d.get("id") and isinstance(d.get("score"), float) for d in docs)
    assert any("ninety days" in str(d.get("content")) for d in docs)

    llms = by_kind["LLM"]
    assert len(llms) == 3
    for span in llms:
        a = span["attributes"]
        assert _get(a, "llm.model_name") == "gpt-4o-mini"
        assert _get(a, "gen_ai.request.model") == "gpt-4o-mini"
        assert _get(a, "llm.token_count.prompt") > 0
        assert _get(a, "llm.token_count.completion") > 0
        assert _get(a, "llm.token_count.total") == _get(a, "llm.token_count.prompt") + _get(
            a, "llm.token_count.completion"
        )
        assert _get(a, "ragkeel.usage.cost") > 0
    costs = sorted(_get(s["attributes"], "ragkeel.usage.cost") for s in llms)
    assert costs[0] == pytest.approx(min(a["cost"] for a in answers))


def _get(attrs: dict[str, Any], dotted: str) -> Any:
    """An attribute as Phoenix returns it: flat (``"a.b": v``) or nested (``{"a": {"b": v}}``)."""
    if dotted in attrs:
        return attrs[dotted]
    node: Any = attrs
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _documents(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    """``retrieval.documents`` as a list of {id, score, content}, flat or nested."""
    nested = _get(attrs, "retrieval.documents")
    if isinstance(nested, list):
        return [d.get("document", d) for d in nested]
    docs = []
    for i in range(100):
        prefix = f"retrieval.documents.{i}.document."
        if prefix + "id" not in attrs:
            break
        docs.append({k: attrs.get(prefix + k) for k in ("id", "score", "content")})
    return docs

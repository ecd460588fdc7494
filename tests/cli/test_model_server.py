"""Issue 13, the shared local model: ``generation.local.base_url`` makes a replica reach the
local model through the gateway as the OpenAI-compatible deployment ``local`` instead of loading
its own copy; ``ragkeel model-server`` serves the pinned, verified file with llama-cpp-python's
own server. The model server is stood in for by ``FaultServer`` (the same protocol on
loopback): the llama.cpp server itself is what ``make cluster`` runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from corpus import COLLECTION, ON_TOPIC, TEST_GATE, write_corpus
from ragkeel.api import create_app
from ragkeel.cli.model_server import missing_server_packages, server_argv
from ragkeel.container import LOCAL_DEPLOYMENT, Container, deployments_of
from ragkeel.gateway.base import Usage
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer, FaultSettings

KEY = "qwen2.5-coder-1.5b-instruct-q4_k_m"
SERVED = "http://127.0.0.1:8090/v1"


def test_base_url_makes_the_local_model_a_deployment_and_nothing_loads_here(
    tmp_path: Path,
) -> None:
    only = load_settings(home=tmp_path, generation={"local": {"base_url": SERVED}})
    [local] = deployments_of(only)
    assert (local.name, local.provider, local.model, local.base_url) == (
        LOCAL_DEPLOYMENT,
        "openai",
        KEY,
        SERVED,
    )
    fallback = load_settings(
        home=tmp_path,
        generation={"provider": "openai", "local": {"base_url": SERVED}},
        gateway={"fallback_to_local": True},
    )
    assert [d.name for d in deployments_of(fallback)] == ["gpt-4o-mini", LOCAL_DEPLOYMENT]
    with Container(fallback) as c:
        assert not c.fallback_to_local  # no in-process last rung: the server is the rung
        assert c.prices.cost(KEY, Usage(1_000_000, 1_000_000)) == 0.0  # served, still free
    unset = load_settings(home=tmp_path, generation={"provider": "openai"})
    assert [d.name for d in deployments_of(unset)] == ["gpt-4o-mini"]


def test_a_replica_answers_with_the_served_model(tmp_path: Path) -> None:
    reply = "Rotate every API key every ninety days [1]."
    with FaultServer(FaultSettings(reply=reply)) as server:
        settings = load_settings(
            home=tmp_path / "home",
            embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
            ingestion={"chunk_tokens": 64},
            generation={"gate_threshold": TEST_GATE, "local": {"base_url": server.base_url}},
        )
        container = Container(settings)
        docs = write_corpus(tmp_path / "docs")
        assert container.pipeline.ingest([str(docs)], COLLECTION).exit_code == 0
        with TestClient(create_app(container, preload_model=True)) as client:
            r = client.post("/v1/query", json={"question": ON_TOPIC})
            assert client.app.state.ragkeel.local_model() is None  # type: ignore[attr-defined]
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["mode"] == "generative" and not body["degraded"], body
        assert body["text"].startswith("Rotate every API key"), body
        assert body["served_by"] == LOCAL_DEPLOYMENT, body
        assert server.stats.by_outcome.get("ok") == 1, server.stats


def test_server_argv_serves_the_verified_file_under_the_model_name(tmp_path: Path) -> None:
    argv = server_argv(tmp_path / "m.gguf", KEY, "127.0.0.1", 8090, n_ctx=4096, threads=0)
    assert argv[:3] == [sys.executable, "-m", "llama_cpp.server"]
    pairs = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert pairs["--model"] == str(tmp_path / "m.gguf") and pairs["--model_alias"] == KEY
    assert pairs["--port"] == "8090" and pairs["--n_ctx"] == "4096"
    assert "--n_threads" not in pairs
    assert "--n_threads" in server_argv(tmp_path, KEY, "h", 1, n_ctx=512, threads=2)
    assert missing_server_packages() == []  # the dev extra installs the model-server extra


def test_model_server_refuses_a_model_that_is_not_installed(tmp_path: Path) -> None:
    env = {**os.environ, "RAGKEEL_HOME": str(tmp_path), "RAGKEEL_MODELS__DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "ragkeel", "model-server", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done
    assert "error [MODEL_MISSING]" in done.stderr and "models install" in done.stderr

"""An API over a small real index: SQLite under a tmp home, the hashing embedder, and the
scripted chat model. ``make_app`` builds the app; ``serve`` runs it under uvicorn on a free
loopback port in a background thread (for the openai client and client disconnects)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from corpus import COLLECTION as COLLECTION
from corpus import OFF_TOPIC as OFF_TOPIC
from corpus import ON_TOPIC as ON_TOPIC
from corpus import TEST_GATE, write_corpus
from ragkeel.api import create_app
from ragkeel.api.request_limits import Limits
from ragkeel.container import Container
from ragkeel.gateway.providers.scripted import Script, ScriptedChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.settings import Settings, load_settings
from ragkeel.testing import FaultServer

GOOD = "Rotate every API key every ninety days [1]."
STARTUP_TIMEOUT_S = 10.0


def api_settings(home: Path, **generation: Any) -> Settings:
    return load_settings(
        home=home,
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
        generation={"gate_threshold": TEST_GATE, **generation},
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "docs")


@pytest.fixture
def container(tmp_path: Path, corpus: Path) -> Iterator[Container]:
    c = Container(api_settings(tmp_path / "home"))
    report = c.pipeline.ingest([str(corpus)], COLLECTION)
    assert report.exit_code == 0, report.to_dict()
    yield c
    c.close()  # the app closes it too; closing twice is harmless


@dataclass
class Api:
    app: FastAPI
    model: ScriptedChatModel
    container: Container


MakeApp = Callable[..., Api]


@pytest.fixture
def make_app(container: Container) -> MakeApp:
    def make(
        script: Script = (GOOD,), *, token_delay_s: float = 0.0, limits: Limits | None = None
    ) -> Api:
        model = ScriptedChatModel(script, token_delay_s=token_delay_s)
        policy = AnswerPolicy(gate_threshold=TEST_GATE, template_version="answer_v1")
        answerer = Answerer(container.retriever, model, policy)
        return Api(create_app(container, answerer=answerer, limits=limits), model, container)

    return make


@pytest.fixture
def api(make_app: MakeApp) -> Api:
    return make_app()


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    with TestClient(api.app) as c:
        yield c


@contextmanager
def auth_required_client(container: Container) -> Iterator[TestClient]:
    """A client of the app over ``container`` with auth required (``api.auth: auto`` on a
    non-loopback address) and the scripted model."""
    answerer = Answerer(
        container.retriever, ScriptedChatModel((GOOD,)), AnswerPolicy(gate_threshold=TEST_GATE)
    )
    app = create_app(container, answerer=answerer, host="0.0.0.0")
    with TestClient(app) as c:
        yield c


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            assert thread.is_alive(), "uvicorn exited during start-up"
            assert time.monotonic() < deadline, "uvicorn did not start in time"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT_S)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """``(event, data)`` per event of an event stream, checking the framing on the way."""
    assert raw.endswith("\n\n"), "an event stream ends with a blank line"
    out: list[tuple[str | None, str]] = []
    for block in raw[:-2].split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            field, sep, value = line.partition(": ")
            assert sep, f"malformed line {line!r}"
            if field == "event":
                event = value
            else:
                assert field == "data", f"unexpected field {field!r}"
                data.append(value)
        out.append((event, "\n".join(data)))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_env(home: Path, provider_url: str) -> dict[str, str]:
    """The environment of a ``ragkeel serve`` over ``home`` (indexed with ``api_settings``),
    answering with the OpenAI-compatible model at ``provider_url``."""
    return {
        "RAGKEEL_HOME": str(home),
        "RAGKEEL_EMBEDDING__PROVIDER": "hashing",
        "RAGKEEL_EMBEDDING__HASHING_DIMENSION": "256",
        "RAGKEEL_EMBEDDING__CACHE": "false",
        "RAGKEEL_INGESTION__CHUNK_TOKENS": "64",
        "RAGKEEL_GENERATION__GATE_THRESHOLD": str(TEST_GATE),
        "RAGKEEL_GENERATION__PROVIDER": "openai",
        "RAGKEEL_GENERATION__OPENAI__BASE_URL": provider_url,
    }


@contextmanager
def ragkeel_serve_process(
    env: dict[str, str], *, ready_path: str = "/readyz", timeout_s: float = 30
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A real ``ragkeel serve`` subprocess (``env`` added to this process's environment) on a
    free loopback port, once ``ready_path`` answers 200; yields its base URL and the process
    (stdout and stderr piped, text); killed on exit if still running."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragkeel", "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "ragkeel serve did not start"
            try:
                if httpx.get(f"{base}{ready_path}", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture
def servers() -> Iterator[tuple[FaultServer, FaultServer]]:
    """Two fault servers answering with a cited reply: deployments ``d0`` and ``d1``."""
    with FaultServer(seed=3) as a, FaultServer(seed=4) as b:
        for s in (a, b):
            s.set(reply="Rotate every API key every ninety days [1].")
        yield a, b

"""Issue 9: shutting ``ragkeel serve`` down (SIGTERM) — the real process, a real provider fake
on loopback (``FaultServer``): a hung provider call, or a client that already left, must not hold
the process past the drain period; answers still running when it ends get an explicit terminal
error (SSE event, OpenAI-style error chunk, or a 503), never a cut connection; answers that fit
in the drain period finish; the exit is clean (no traceback)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ragkeel.container import Container
from ragkeel.testing import FaultServer, FaultSettings

from .conftest import (
    COLLECTION,
    ON_TOPIC,
    MakeApp,
    api_settings,
    ragkeel_serve_process,
    serve_env,
)

DRAIN_S = 2.0
EXIT_SLACK_S = 6.0  # the flush allowance (3 s) and process start-up/teardown on a slow machine
LONG_REPLY = " ".join(["Rotate every API key every ninety days [1]."] * 10)


@contextmanager
def ragkeel_serve(home: Path, provider: FaultServer) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    env = {**serve_env(home, provider.base_url), "RAGKEEL_SERVER__DRAIN_S": str(DRAIN_S)}
    with ragkeel_serve_process(env) as served:
        yield served


@pytest.fixture
def home(tmp_path: Path, corpus: Path) -> Path:
    home = tmp_path / "home"
    container = Container(api_settings(home))
    assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
    container.close()
    return home


def _stop(proc: subprocess.Popen[str]) -> tuple[float, str]:
    """SIGTERM; (seconds until the process exited, its stderr)."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=DRAIN_S + EXIT_SLACK_S + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"no exit within {DRAIN_S + EXIT_SLACK_S + 10} s:\n{err}") from None
    return time.monotonic() - started, err


def _sse_events(text: str) -> list[tuple[str | None, dict[str, Any] | str]]:
    events: list[tuple[str | None, dict[str, Any] | str]] = []
    for block in text.strip().split("\n\n"):
        name, data = None, ""
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        events.append((name, json.loads(data) if data.startswith("{") else data))
    return events


def test_sigterm_with_hung_provider_calls_ends_every_answer_explicitly(home: Path) -> None:
    with (
        FaultServer(FaultSettings(error_rate=1.0, error="hang")) as provider,
        ragkeel_serve(home, provider) as (base, proc),
    ):
        got: dict[str, httpx.Response] = {}

        def ask(name: str, path: str, body: dict[str, Any]) -> None:
            with httpx.Client(base_url=base, timeout=60) as http:
                got[name] = http.post(path, json=body)

        chat = {"messages": [{"role": "user", "content": ON_TOPIC}]}
        askers = [
            threading.Thread(target=ask, args=("plain", "/v1/query", {"question": ON_TOPIC})),
            threading.Thread(
                target=ask, args=("sse", "/v1/query", {"question": ON_TOPIC, "stream": True})
            ),
            threading.Thread(
                target=ask, args=("chat", "/v1/chat/completions", {**chat, "stream": True})
            ),
        ]
        for t in askers:
            t.start()
        # and one client that gives up while its provider call hangs
        with (
            httpx.Client(base_url=base, timeout=0.5) as impatient,
            pytest.raises(httpx.ReadTimeout),
        ):
            impatient.post("/v1/query", json={"question": ON_TOPIC})
        deadline = time.monotonic() + 10
        while provider.stats.in_flight < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert provider.stats.in_flight == 4, provider.stats  # every call is hanging

        seconds, err = _stop(proc)
        for t in askers:
            t.join(10)

    assert seconds <= DRAIN_S + EXIT_SLACK_S, f"exit took {seconds:.1f} s\n{err}"
    assert "Traceback" not in err, err
    plain = got["plain"]
    assert plain.status_code == 503 and plain.json()["code"] == "SHUTTING_DOWN", plain.text
    events = _sse_events(got["sse"].text)
    assert [name for name, _ in events[:2]] == ["sources", "retrieval"]
    last_name, last = events[-1]
    assert last_name == "error" and isinstance(last, dict), events[-1]
    assert last["code"] == "SHUTTING_DOWN" and last["fatal"] is True
    chat_events = _sse_events(got["chat"].text)
    final = chat_events[-1][1]
    assert isinstance(final, dict) and final["error"]["code"] == "SHUTTING_DOWN", chat_events


def test_sigterm_lets_running_answers_finish_and_refuses_new_ones(home: Path) -> None:
    # ~1 s per answer (~100 pieces at 0.01 s): inside the 2 s drain
    settings = FaultSettings(reply=LONG_REPLY, token_delay_s=0.01)
    with FaultServer(settings) as provider, ragkeel_serve(home, provider) as (base, proc):
        with httpx.Client(base_url=base, timeout=30) as http:
            body = {"question": ON_TOPIC, "stream": True}
            with http.stream("POST", "/v1/query", json=body) as r:
                lines = r.iter_lines()
                for line in lines:
                    if line == "event: token":
                        break
                proc.send_signal(signal.SIGTERM)  # mid-answer
                time.sleep(0.3)
                with pytest.raises(httpx.ConnectError):  # no longer listening
                    httpx.post(f"{base}/v1/query", json={"question": ON_TOPIC}, timeout=5)
                rest = "\n".join(lines)
        _, err = proc.communicate(timeout=DRAIN_S + EXIT_SLACK_S + 10)
    assert "event: done" in rest and "event: error" not in rest, rest[-300:]
    assert "Traceback" not in err, err


def test_while_draining_new_answers_are_refused_at_once(make_app: MakeApp) -> None:
    # a request that reaches the app after the drain began (e.g. on a connection already open)
    api = make_app()
    with TestClient(api.app) as client:
        assert client.post("/v1/query", json={"question": ON_TOPIC}).status_code == 200
        api.app.state.ragkeel.drain(60.0)
        for path, body in (
            ("/v1/query", {"question": ON_TOPIC}),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": ON_TOPIC}]}),
        ):
            r = client.post(path, json=body)
            assert r.status_code == 503 and r.json()["code"] == "SHUTTING_DOWN", r.text
            assert int(r.headers["Retry-After"]) >= 1
        assert client.get("/v1/search", params={"q": ON_TOPIC}).status_code == 200
    assert api.model.calls == 1

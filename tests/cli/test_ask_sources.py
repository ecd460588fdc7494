"""``ragkeel ask`` prints the retrieved sources and the gate decision while the model is still
working (issue 14, sources first): the real command line as a subprocess, its model an
OpenAI-compatible fake on 127.0.0.1 that holds the request (``FaultServer``, ``"hang"``)."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from api.conftest import serve_env
from corpus import ON_TOPIC, write_corpus
from ragkeel.testing import FaultServer
from ragkeel.testing.faults import FaultSettings

WAIT_S = 60.0  # bounds every wait on the subprocess (start-up imports are slow under load)


def _env(home: Path, model_url: str = "http://127.0.0.1:9/v1") -> dict[str, str]:
    """``ragkeel serve``'s test environment (``api/conftest.py``) for the CLI; the default model
    URL is never called (extractive answers)."""
    return {**os.environ, **serve_env(home, model_url)}


def _ragkeel(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragkeel", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT_S * 2,
        check=False,
    )


def _read(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the test corpus indexed (collection ``kb``), shared by this module's tests
    (they only read it)."""
    root = tmp_path_factory.mktemp("ask-sources")
    home = root / "home"
    docs = write_corpus(root / "docs")
    done = _ragkeel("ingest", str(docs), "--collection", "kb", env=_env(home))
    assert done.returncode == 0, done.stderr
    return home


def test_ask_prints_the_sources_while_the_model_is_held(home: Path) -> None:
    with (
        FaultServer(FaultSettings(error_rate=1.0, error="hang")) as server,
        subprocess.Popen(
            [sys.executable, "-m", "ragkeel", "ask", ON_TOPIC, "--collection", "kb"],
            env=_env(home, server.base_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc,
    ):
        lines: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        reader = threading.Thread(target=_read, args=(proc.stdout, lines))
        reader.start()
        try:
            shown: list[str] = []
            while not (shown and shown[-1] == "\n"):  # the sources end with a blank line
                shown.append(lines.get(timeout=WAIT_S))
            deadline = time.monotonic() + WAIT_S
            while server.stats.in_flight == 0:  # the model call is under way, and held
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.02)
            assert lines.empty() and proc.poll() is None  # no answer yet
        finally:
            proc.kill()  # the process this test started
            proc.wait(WAIT_S)
            reader.join(WAIT_S)
    assert re.fullmatch(r"Sources \(\d+ retrieved; gate passed: \w+\):\n", shown[0])
    assert "1. API keys — " in shown[1] and shown[1].rstrip().endswith(")")
    assert any("keys.md" in line for line in shown[1:])


def test_ask_prints_sources_answer_then_footer(home: Path) -> None:
    asked = _ragkeel("ask", ON_TOPIC, "--collection", "kb", "--mode", "extractive", env=_env(home))
    assert asked.returncode == 0, asked.stderr
    out = asked.stdout
    sources = out.index("Sources (")
    answer = out.index("ninety days")
    footer = out.index("extractive · grounded")
    assert sources < answer < footer
    as_json = _ragkeel(
        "ask", ON_TOPIC, "--collection", "kb", "--mode", "extractive", "--json", env=_env(home)
    )
    assert as_json.returncode == 0 and "Sources (" not in as_json.stdout

"""End to end with the real local model: ingest → ask → cited answer → trace (issue 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragkeel.models.cache import default_models_dir
from ragkeel.models.gguf import DEFAULT_MODEL, MODELS
from ragkeel.observability.trace_store import SqliteTraceStore

REPO = Path(__file__).resolve().parents[1]
GGUF = default_models_dir() / MODELS[DEFAULT_MODEL].filename  # where `make setup` installs it
pytestmark = pytest.mark.model


@pytest.mark.timeout(600)
def test_ingest_ask_cited_answer_and_trace(tmp_path: Path) -> None:
    if not GGUF.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{GGUF} missing: make setup must assemble the model")
        pytest.skip("local model not installed: run `make setup`")
    home = tmp_path / "home"  # a fresh home: the model is found in the user-level models dir
    env = {
        **{k: v for k, v in os.environ.items() if k != "RAGKEEL_MODELS__DIR"},
        "RAGKEEL_HOME": str(home),
        "RAGKEEL_EMBEDDING__PROVIDER": "hashing",
        "RAGKEEL_GENERATION__GATE_THRESHOLD": "0.1",
        "RAGKEEL_GENERATION__MAX_ANSWER_TOKENS": "80",
    }

    def ragkeel(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ragkeel", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=500,
            check=False,
        )

    assert ragkeel("ingest", str(REPO / "examples"), "--collection", "examples").returncode == 0
    done = ragkeel(
        "ask",
        "How often must production API keys be rotated?",
        "--collection",
        "examples",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["mode"] == "generative" and answer["model"] == DEFAULT_MODEL
    assert answer["usage"]["completion_tokens"] > 0 and answer["text"].strip()
    assert "90" in answer["text"]
    assert answer["citations"], "the answer cites (or is attributed to) a packed source"
    assert answer["grounded"] and not answer["invalid_citations"]
    assert all(
        c["source"].endswith((".md", ".txt", ".html", ".pdf", ".docx", ".csv", ".json"))
        for c in answer["citations"]
    )
    store = SqliteTraceStore(home / "traces.db")
    try:
        trace = store.get(answer["trace_id"])
        assert trace is not None and trace.question.startswith("How often")
        assert trace.outcome in ("answered", "degraded") and trace.model == DEFAULT_MODEL
    finally:
        store.close()
    assert not (home / "models").exists()  # models live in the user-level dir, not per home

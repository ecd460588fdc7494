"""A served ragkeel with traffic for the dashboard tests: a real index (SQLite, the hashing
embedder) with one hostile document whose text carries markup and script, and requests sent
through the
HTTP API: answered, refused, extractive (quoting the hostile text), answered by a fallback,
degraded, and a hostile question. Model calls go through the real gateway to ``FaultServer``s
(OpenAI-compatible, 127.0.0.1); the app is served under uvicorn (``api.conftest.serve``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.conftest import serve
from corpus import COLLECTION, CORPUS, OFF_TOPIC, ON_TOPIC, TEST_GATE, write_corpus
from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer

PWNED = "PWNED"
HOSTILE = (
    f"<script>document.title='{PWNED}';window.pwned=1</script>"
    f"<img src=x onerror=\"document.title='{PWNED}'\"><b>bold?</b>"
)
HOSTILE_DOC = (
    f"Key rotation handbook. {HOSTILE} Rotate every API key every ninety days; "
    "rotation keeps leaked keys short-lived.\n"
)
HOSTILE_QUESTION = f"{HOSTILE} how often do I rotate an API key?"
OUTAGE = "What happened during the upstream outage on 3 March?"
GOOD = "Rotate every API key every ninety days [1]."
REPORT = "<html><body><h1>eval report</h1><script>window.pwned=1</script></body></html>"


def build_container(home: Path, docs: Path, *urls: str, **settings: Any) -> Container:
    """A container over the corpus and the hostile document whose gateway chains the
    deployments at ``urls`` (``FaultServer``s: gpt-4o-mini list prices, one retry)."""
    write_corpus(docs, {**CORPUS, "hostile.txt": HOSTILE_DOC})
    deployments = [
        {"name": f"d{i}", "model": "gpt-4o-mini", "base_url": url, "timeout_s": 5}
        for i, url in enumerate(urls)
    ]
    container = Container(
        load_settings(
            home=home,
            embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
            ingestion={"chunk_tokens": 64},
            generation={"gate_threshold": TEST_GATE, "provider": "openai"},
            gateway={
                "deployments": deployments,
                "retry": {"max_retries": 1, "base_delay_s": 0.001, "max_delay_s": 0.002},
                "breaker": {"consecutive_failures": 2, "open_s": 600, "max_open_s": 600},
            },
            **settings,
        )
    )
    report = container.pipeline.ingest([str(docs)], COLLECTION)
    assert report.exit_code == 0, report.to_dict()
    results = home / "results" / "scifact-run"
    results.mkdir(parents=True)
    (results / "report.html").write_text(REPORT, encoding="utf-8")
    return container


def send_traffic(
    client: httpx.Client,
    primary: FaultServer,
    backup: FaultServer,
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """Trace ids by name of a mix of requests sent through the API: answered, refused,
    extractive over the hostile document, answered by the backup after the primary failed,
    and degraded with both deployments down (their breakers are left open)."""
    ids = {}

    def ask(name: str, question: str, **body: Any) -> None:
        r = client.post("/v1/query", json={"question": question, **body}, headers=headers)
        assert r.status_code == 200, r.text
        ids[name] = r.json()["trace_id"]

    ask("answered", ON_TOPIC)
    ask("refused", OFF_TOPIC)
    ask("hostile", HOSTILE_QUESTION, mode="extractive")
    primary.set(error="503", error_rate=1.0)
    ask("fallback", "How often do I rotate keys, and where is it done?")
    primary.set(down=True)
    backup.set(down=True)
    ask("degraded", OUTAGE)
    return ids


@dataclass
class Site:
    base: str
    container: Container
    trace_ids: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One served app (auth off, as on loopback) with traffic, shared by a module's tests."""
    root = tmp_path_factory.mktemp("ui")
    with FaultServer(seed=1) as primary, FaultServer(seed=2) as backup:
        primary.set(reply=GOOD)
        backup.set(reply=GOOD)
        container = build_container(root / "home", root / "docs", primary.base_url, backup.base_url)
        with serve(create_app(container)) as base:
            with httpx.Client(base_url=base, timeout=30) as client:
                ids = send_traffic(client, primary, backup)
            yield Site(base, container, ids)

"""Sources first (issue 14): time from sending a streamed question to the ``sources`` event of
``/v1/query`` and to the sources chunk of ``/v1/chat/completions``, against a slow model, on the
SciFact index; the first token's time beside it for contrast. Target: sources <= 100 ms p95.

    .venv/bin/python bench/sources_first.py [--home bench/out/scifact] [--n 60]
        [--model-latency-s 1.5] [--seed 14]

A real ``ragkeel serve`` subprocess over ``--home`` (SciFact indexed there on first use with the
default ONNX embedder; the embedding cache off, so every question is embedded) answers with an
OpenAI-compatible fake model on 127.0.0.1 (``FaultServer``) that waits ``--model-latency-s``
before its first token. Seeded SciFact test questions, the two routes alternating, one at a time,
after 5 untimed warm-up questions; the client reads each stream up to the first token and then
closes it (which cancels the answer). The default gate applies (a refused question still gets its
sources first). The 1-minute load average before and after the run is printed with the figures:
on a shared machine it says how much of the time was spent waiting for a core.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from common import DATASETS, REPO, commit, machine, pct, today, wait_until_up
from ragkeel.container import Container
from ragkeel.evaluation.datasets.beir import load_beir
from ragkeel.evaluation.run.retrieval import collection_name, index_corpus
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer
from ragkeel.testing.faults import FaultSettings

WARM_UP = 5
START_S = 120.0


def ensure_index(home: Path) -> str:
    """SciFact's corpus in ``home`` (ingested once; unchanged documents are skipped after)."""
    dataset = load_beir(DATASETS / "scifact", "test")
    with Container(load_settings(home=home)) as container:
        report = index_corpus(dataset, container.pipeline)
        if report.exit_code != 0:
            raise SystemExit(f"indexing SciFact failed: {report.to_dict()}")
    return collection_name(dataset)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(home: Path, model_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "RAGKEEL_HOME": str(home),
        "RAGKEEL_EMBEDDING__CACHE": "false",
        "RAGKEEL_GENERATION__PROVIDER": "openai",
        "RAGKEEL_GENERATION__OPENAI__BASE_URL": model_url,
        "RAGKEEL_GENERATION__OPENAI__MODEL": "slow-fake",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "ragkeel", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_up(proc, f"{base}/readyz", "ragkeel serve", START_S)
    return proc, base


def timed_query(client: httpx.Client, question: str, collection: str) -> dict[str, Any]:
    """ms to the ``sources`` event and to the first ``token``; the gate's verdict."""
    body = {"question": question, "collection": collection, "stream": True}
    out: dict[str, Any] = {}
    start = time.perf_counter()
    with client.stream("POST", "/v1/query", json=body) as r:
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "sources":
                out["sources_ms"] = (time.perf_counter() - start) * 1000
                data = json.loads(line.removeprefix("data: "))
                out["passed"] = data["gate"]["passed"]
                out["n_sources"] = len(data["sources"])
            elif line.startswith("data: ") and event == "token":
                out["first_token_ms"] = (time.perf_counter() - start) * 1000
                break
    return out


def timed_chat(client: httpx.Client, question: str, collection: str) -> dict[str, Any]:
    """ms to the chunk carrying ``ragkeel.sources`` and to the first non-empty content."""
    body = {
        "messages": [{"role": "user", "content": question}],
        "collection": collection,
        "stream": True,
    }
    out: dict[str, Any] = {}
    start = time.perf_counter()
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line.removeprefix("data: "))
            if "sources" in chunk.get("ragkeel", {}):
                out["sources_ms"] = (time.perf_counter() - start) * 1000
                out["passed"] = chunk["ragkeel"]["gate"]["passed"]
            elif chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                out["first_token_ms"] = (time.perf_counter() - start) * 1000
                break
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    sources = [r["sources_ms"] for r in rows]
    first = [r["first_token_ms"] for r in rows if "first_token_ms" in r]
    return {
        "n": len(rows),
        "gate_passed": sum(bool(r.get("passed")) for r in rows),
        "sources_ms": {
            "p50": round(pct(sources, 50), 1),
            "p95": round(pct(sources, 95), 1),
            "max": round(max(sources), 1),
        },
        "first_token_ms": {"p50": round(pct(first, 50), 1), "p95": round(pct(first, 95), 1)},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, default=REPO / "bench" / "out" / "scifact")
    ap.add_argument("--n", type=int, default=60, help="questions per route")
    ap.add_argument("--model-latency-s", type=float, default=1.5)
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    collection = ensure_index(args.home)
    dataset = load_beir(DATASETS / "scifact", "test")
    qids = random.Random(args.seed).sample(sorted(dataset.qrels), WARM_UP + args.n)
    questions = [dataset.queries[q] for q in qids]
    load_before = os.getloadavg()[0]
    fake = FaultSettings(base_latency_s=args.model_latency_s, reply="A slow answer [1].")
    with FaultServer(fake) as model:
        proc, base = start_server(args.home, model.base_url)
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                for q in questions[:WARM_UP]:
                    timed_query(client, q, collection)
                    timed_chat(client, q, collection)
                query_rows, chat_rows = [], []
                for q in questions[WARM_UP:]:
                    query_rows.append(timed_query(client, q, collection))
                    chat_rows.append(timed_chat(client, q, collection))
        finally:
            proc.terminate()  # the server this script started
            proc.wait(30)
    out = {
        "machine": machine(),
        "date": today(),
        "commit": commit(),
        "model_latency_s": args.model_latency_s,
        "load_average_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "/v1/query": summary(query_rows),
        "/v1/chat/completions": summary(chat_rows),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

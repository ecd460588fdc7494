"""How long an answer-cache hit takes (issue 14: target <= 5 ms p95 server-side).

A temporary home with the first ``--docs`` SciFact documents (hashing embedder, 384 dims: the
corpus only has to be realistic in size, not in quality) and extractive answers (no model: a
miss costs retrieval only, which is the cheapest miss there is). ``--questions`` SciFact claims
are asked once to fill the cache, then ``--hits`` times at random, per backend arm:

- in-process: ``Answerer.answer`` wall time of a hit (the lookup reads the collections'
  revision from the store, hashes the key, reads and decodes the stored answer) — ``memory``
  (the LRU alone), ``sqlite`` (the file alone: every hit a read), ``memory+sqlite`` (the
  embedded default), ``redis`` and ``memory+redis`` (a redis-server of its own on 127.0.0.1,
  ``ragkeel.testing.services``, stopped at the end);
- through the API: ``POST /v1/query`` over real HTTP on loopback (uvicorn in a thread, one
  keep-alive httpx client), the embedded default: the client's round trip bounds the server
  side from above; the server side itself (an ASGI wrapper around the app: from the request
  reaching the app to its last byte handed to uvicorn — admission, auth, the answer's thread,
  the trace written, the metrics), beside ``GET /healthz`` on the same server (the floor of
  any request there); and the answer's own ``latency_ms.cache`` (the lookup).

A miss (the first ask) is reported for comparison. With ``--semantic-docs N``: the semantic
cache with the default ONNX embedder and threshold over the first N documents, one paraphrase
of each question (three fixed rewrites in turn) after the originals. Prints one JSON object.

    PYTHONPATH=$PWD/src:$PWD/bench .venv/bin/python bench/answer_cache.py [--docs 500]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from common import DATASETS, commit, machine, pct, today
from ragkeel.api import create_app
from ragkeel.caching.answers import AnswerCache
from ragkeel.caching.backends import CacheBackend, MemoryCache, TieredCache
from ragkeel.caching.keys import normalise_question
from ragkeel.caching.redis_backend import RedisCache
from ragkeel.caching.sqlite_backend import SqliteCache
from ragkeel.container import Container
from ragkeel.generation.answerer import Answerer
from ragkeel.observability import names
from ragkeel.settings import load_settings
from ragkeel.shared_state import Outage, connect
from ragkeel.testing import services

COLLECTION = "scifact"


def ms_stats(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(pct(samples, 50), 3),
        "p95_ms": round(pct(samples, 95), 3),
        "p99_ms": round(pct(samples, 99), 3),
    }


def build_corpus(home: Path, docs: int) -> Path:
    corpus = home / "corpus.jsonl"
    with (DATASETS / "scifact" / "corpus.jsonl").open() as src, corpus.open("w") as out:
        for _, line in zip(range(docs), src, strict=False):
            out.write(line)
    return corpus


def build(home: Path, docs: int) -> Container:
    corpus = build_corpus(home, docs)
    settings = load_settings(
        home=home / "home",
        embedding={"provider": "hashing", "hashing_dimension": 384, "cache": False},
        generation={"provider": "none", "mode": "extractive", "gate_threshold": 0.05},
    )
    container = Container(settings)
    report = container.pipeline.ingest([str(corpus)], COLLECTION)
    assert report.exit_code == 0, report.to_dict()
    return container


def questions(n: int) -> list[str]:
    """The first ``n`` SciFact claims that differ once normalised (a few repeat)."""
    out: dict[str, str] = {}
    with (DATASETS / "scifact" / "queries.jsonl").open() as f:
        for line in f:
            text = json.loads(line)["text"]
            out.setdefault(normalise_question(text), text)
            if len(out) == n:
                break
    return list(out.values())


def arm(container: Container, backend: CacheBackend, asked: list[str], hits: int) -> dict[str, Any]:
    store = container.store
    cache = AnswerCache(backend, lambda c, s: store.revision(c, scope=s), "bench", ttl_s=3600)
    answerer = Answerer(container.retriever, None, container.answerer.policy, cache=cache)
    misses: list[float] = []
    for q in asked:
        began = time.perf_counter()
        answer = answerer.answer(q, collection=COLLECTION)
        misses.append((time.perf_counter() - began) * 1000)
        assert answer.cache is not None and answer.cache.stored, answer.cache
    rng = random.Random(14)
    walls, lookups = [], []
    for _ in range(hits):
        began = time.perf_counter()
        answer = answerer.answer(rng.choice(asked), collection=COLLECTION)
        walls.append((time.perf_counter() - began) * 1000)
        assert answer.cached
        lookups.append(answer.latency_ms[names.STAGE_CACHE])
    return {"miss": ms_stats(misses), "hit": ms_stats(walls), "lookup": ms_stats(lookups)}


class ServerSide:
    """ASGI wrapper timing each HTTP request inside the server: from the app being called to
    its last body message sent (what the client's round trip adds to is the network, the
    client and waiting for a CPU on a loaded machine)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.samples: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.samples.append((time.perf_counter() - began) * 1000)

        await self.app(scope, receive, timed_send)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def api_arm(container: Container, asked: list[str], hits: int) -> dict[str, Any]:
    app = ServerSide(create_app(container))  # the container's answerer and cache (memory+sqlite)
    rng = random.Random(41)
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:

        def ask(q: str) -> tuple[float, dict[str, Any]]:
            began = time.perf_counter()
            r = client.post("/v1/query", json={"question": q, "collection": COLLECTION})
            elapsed = (time.perf_counter() - began) * 1000
            assert r.status_code == 200, r.text
            return elapsed, r.json()

        for _ in range(hits):  # the floor: the same server answering its cheapest route
            assert client.get("/healthz").status_code == 200
        floor, app.samples = app.samples, []
        misses = [ask(q)[0] for q in asked]
        server_misses, app.samples = app.samples, []
        rounds, lookups = [], []
        for _ in range(hits):
            elapsed, body = ask(rng.choice(asked))
            assert body["cached"], body["cache"]
            rounds.append(elapsed)
            lookups.append(body["latency_ms"][names.STAGE_CACHE])
    return {
        "healthz_server_side": ms_stats(floor),
        "miss_round_trip": ms_stats(misses),
        "miss_server_side": ms_stats(server_misses),
        "hit_round_trip": ms_stats(rounds),
        "hit_server_side": ms_stats(app.samples),
        "hit_lookup_in_server": ms_stats(lookups),
    }


PARAPHRASES = (  # rewrites that keep the claim: what a semantic hit is for
    lambda q: f"Is it true that {q[0].lower()}{q[1:].rstrip('.')}?",
    lambda q: f"{q.rstrip('.')} - is that so?",
    lambda q: f"Please check: {q}",
)


def semantic_arm(home: Path, docs: int, asked: list[str]) -> dict[str, Any]:
    """The semantic cache with the default embedder (ONNX MiniLM) and threshold: each question
    asked once, then one paraphrase of each: the hits' latency (one embedding + the match +
    the stored answer), the paraphrases that missed (embedding, match, then retrieval)."""
    settings = load_settings(
        home=home / "onnx",
        embedding={"cache": False},
        generation={"provider": "none", "mode": "extractive", "gate_threshold": 0.05},
        cache={"backend": "memory", "semantic": True},
    )
    container = Container(settings)
    try:
        corpus = home / "corpus.jsonl"
        assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
        answerer = container.answerer
        for q in asked:
            answerer.answer(q, collection=COLLECTION)
        hits: list[float] = []
        misses: list[float] = []
        kinds = {"exact": 0, "semantic": 0, "miss": 0}
        for i, q in enumerate(asked):
            began = time.perf_counter()
            answer = answerer.answer(PARAPHRASES[i % len(PARAPHRASES)](q), collection=COLLECTION)
            elapsed = (time.perf_counter() - began) * 1000
            kind = answer.cache.kind if answer.cache and answer.cache.kind else "miss"
            kinds[kind] += 1
            (hits if answer.cached else misses).append(elapsed)
        return {
            "docs": docs,
            "paraphrases": len(asked),
            "outcomes": kinds,
            "semantic_hit": ms_stats(hits) if hits else None,
            "paraphrase_miss": ms_stats(misses) if misses else None,
        }
    finally:
        container.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--hits", type=int, default=2000)
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--semantic-docs", type=int, default=0, help="0: no semantic arm")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    asked = questions(args.questions)
    result: dict[str, Any] = {
        "date": today(),
        "commit": commit(),
        "machine": machine(),
        "docs": args.docs,
        "questions": len(asked),
        "hits": args.hits,
    }
    with tempfile.TemporaryDirectory() as tmp:
        container = build(Path(tmp), args.docs)
        try:
            db = Path(tmp) / "bench-cache"
            db.mkdir()
            arms: dict[str, Callable[[], CacheBackend]] = {
                "memory": lambda: MemoryCache(10_000),
                "sqlite": lambda: SqliteCache(db / "sqlite.db", 10_000),
                "memory+sqlite": lambda: TieredCache(
                    MemoryCache(1_000), SqliteCache(db / "tiered.db", 10_000)
                ),
            }
            server = None if args.no_redis else services.start_redis()
            try:
                if server is not None:
                    shared = connect(server.url, prefix="bench:", outage=Outage(pause_s=60))
                    arms["redis"] = lambda: RedisCache(shared, 10_000)
                    arms["memory+redis"] = lambda: TieredCache(
                        MemoryCache(1_000), RedisCache(shared, 10_000)
                    )
                result["in_process"] = {}
                for name, make in arms.items():
                    backend = make()
                    result["in_process"][name] = arm(container, backend, asked, args.hits)
                    backend.clear()
            finally:
                if server is not None:
                    shared.close()
                    server.stop()
            result["api"] = api_arm(container, asked, min(args.hits, 1000))
        finally:
            container.close()
        if args.semantic_docs:
            build_corpus(Path(tmp), args.semantic_docs)
            result["semantic"] = semantic_arm(Path(tmp), args.semantic_docs, asked)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Re-embedding a SciFact-size collection without downtime (issue 13): how long the build and
the switch take, and hybrid search latency (p50/p95, k=10, SciFact's test queries in a loop)
before, during and after the rebuild, from a second store handle as a serving replica would.

    .venv/bin/python bench/reembed_latency.py [--work DIR] [--to hashing-256|onnx]

Starts from the source store ``bench/collection_copy.py`` builds (SciFact ingested with the
``hashing`` embedder, 384 dimensions), copied to ``DIR/reembed/ragkeel.db``; re-embeds it to
another model (``hashing-256`` in seconds, ``onnx`` = the default MiniLM model). Searches embed
their queries with the model active when they start; those that start before the switch and
end after it are counted with "during".
"""

from __future__ import annotations

import argparse
import json
import shutil
import threading
import time
from pathlib import Path

from common import DATASETS, REPO, commit, machine, pct, today
from ragkeel.embeddings.base import Embedder
from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.ingestion.reembed import reembed_collection
from ragkeel.models.cache import default_models_dir
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.filters import Filter
from ragkeel.storage.sqlite import SqliteDocumentStore


def queries() -> list[str]:
    lines = (DATASETS / "scifact" / "queries.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines]


def new_embedder(name: str) -> Embedder:
    if name == "onnx":
        from ragkeel.embeddings.onnx import OnnxEmbedder

        return OnnxEmbedder.from_installed_packages(default_models_dir(), 0, 8, 256)
    return HashingEmbedder(int(name.split("-")[1]))


def summary(samples: list[float]) -> dict[str, float | int]:
    return {
        "searches": len(samples),
        "p50_ms": round(pct(samples, 50), 2),
        "p95_ms": round(pct(samples, 95), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "collection-copy")
    ap.add_argument("--to", default="hashing-256")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    db = args.work / "reembed" / "ragkeel.db"
    shutil.rmtree(db.parent, ignore_errors=True)
    db.parent.mkdir(parents=True)
    shutil.copy(args.work / "source" / "ragkeel.db", db)
    old, new = HashingEmbedder(384), new_embedder(args.to)
    texts = queries()
    serving = SqliteDocumentStore(db)
    retrievers = {
        e.name: HybridRetriever(serving, serving.keyword, serving.vectors, e) for e in (old, new)
    }
    flt = Filter(collection="scifact")
    phase = ["before"]
    samples: dict[str, list[float]] = {"before": [], "during": [], "after": []}
    stop = threading.Event()

    def search() -> None:
        for i in range(10_000_000):
            if stop.is_set():
                return
            model = serving.collection_model("scifact")
            retriever = retrievers[str(model[0]) if model else old.name]
            started, t0 = phase[0], time.perf_counter()
            retriever.search(texts[i % len(texts)], 10, flt=flt)
            elapsed = (time.perf_counter() - t0) * 1000
            samples["during" if phase[0] != started else started].append(elapsed)

    writer = SqliteDocumentStore(db)
    thread = threading.Thread(target=search)
    thread.start()
    time.sleep(5)
    phase[0] = "during"
    t0 = time.perf_counter()
    done = reembed_collection(writer, new, "scifact", batch_size=args.batch_size)
    build_s = time.perf_counter() - t0
    phase[0] = "after"
    time.sleep(5)
    stop.set()
    thread.join()
    out = {
        "machine": machine(),
        "date": today(),
        "commit": commit(),
        "from": old.name,
        "to": new.name,
        "chunks": done.total,
        "embedded": done.embedded,
        "passes": done.passes,
        "reembed_s": round(build_s, 2),
        "embed_s": round(done.embed_seconds, 2),
        "store_chunks_per_s": round(done.embedded / (build_s - done.embed_seconds), 1),
        "chunks_per_s": round(done.embedded / build_s, 1),
        "search_before": summary(samples["before"]),
        "search_during": summary(samples["during"]),
        "search_after": summary(samples["after"]),
    }
    writer.close()
    serving.close()
    (args.work / "reembed-result.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

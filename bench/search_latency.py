"""Search latency on a synthetic index of N chunks (default 100,000): p50/p95 for bm25, dense
and hybrid, excluding query embedding (the HashingEmbedder is used for queries, and its time is
subtracted; ONNX query embedding is measured separately in retrieval_scifact.py).

    .venv/bin/python bench/search_latency.py [--chunks 100000] [--queries 300]

Text: Zipf-distributed words from a 40k vocabulary, ~120 words a chunk; vectors: random unit
vectors (384 dims). The index is built once under bench/out/ and reused.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from common import REPO, commit, machine, pct, peak_rss_mib, today
from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.filters import Filter
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import Chunk, Document

DIM = 384
PER_DOC = 100


def vocabulary(n: int, rng: np.random.Generator) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, size=int(rng.integers(3, 10)))) for _ in range(n)]


def build(path: Path, n_chunks: int, rng: np.random.Generator) -> None:
    store = SqliteDocumentStore(path)
    vocab = vocabulary(40_000, rng)
    probs = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    probs /= probs.sum()
    t0 = time.perf_counter()
    for d in range(n_chunks // PER_DOC):
        words = rng.choice(len(vocab), size=(PER_DOC, 120), p=probs)
        texts = [" ".join(vocab[w] for w in row) for row in words]
        doc = Document(f"d{d}", "synth", f"/synth/{d}.txt", f"doc {d}", "\n\n".join(texts), f"h{d}")
        chunks, pos = [], 0
        for i, t in enumerate(texts):
            chunks.append(
                Chunk(
                    f"d{d}-{i}",
                    doc.id,
                    "synth",
                    i,
                    t,
                    pos,
                    pos + len(t),
                    source=doc.source,
                    metadata={"bucket": d % 10},
                )
            )
            pos += len(t) + 2
        vecs = rng.standard_normal((PER_DOC, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        store.upsert_document(doc, chunks, vecs, embedding_model="hashing-384")
        if d % 100 == 0:
            print(
                f"  built {(d + 1) * PER_DOC} chunks in {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    path = REPO / "bench" / "out" / f"synthetic-{args.chunks}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        build(path, args.chunks, rng)
    store = SqliteDocumentStore(path)
    t0 = time.perf_counter()
    store.segment("synth")
    load_s = time.perf_counter() - t0
    retriever = HybridRetriever(store, store.keyword, store.vectors, HashingEmbedder(DIM))
    vocab_rows = store._conn.execute(
        "SELECT term FROM vocab ORDER BY random() LIMIT 5000"
    ).fetchall()
    terms = [r[0] for r in vocab_rows]
    queries = [
        " ".join(rng.choice(terms, size=int(rng.integers(3, 12)))) for _ in range(args.queries)
    ]
    flt = Filter(collection="synth")
    results: dict[str, dict[str, float]] = {}
    for mode in ("bm25", "dense", "hybrid"):
        for q in queries[:20]:  # warm-up
            retriever.search(q, 10, mode=mode, flt=flt)  # type: ignore[arg-type]
        samples = []
        for q in queries:
            r = retriever.search(q, 10, mode=mode, flt=flt)  # type: ignore[arg-type]
            samples.append(r.timings_ms["total_ms"] - r.timings_ms.get("embed_ms", 0.0))
        results[mode] = {"p50_ms": round(pct(samples, 50), 2), "p95_ms": round(pct(samples, 95), 2)}
        print(mode, results[mode], flush=True)
    # a metadata filter resolved by SQL inside the query
    mflt = Filter(collection="synth", metadata={"bucket": 3})
    samples = []
    for q in queries:
        r = retriever.search(q, 10, mode="hybrid", flt=mflt)
        samples.append(r.timings_ms["total_ms"] - r.timings_ms.get("embed_ms", 0.0))
    results["hybrid+metadata filter"] = {
        "p50_ms": round(pct(samples, 50), 2),
        "p95_ms": round(pct(samples, 95), 2),
    }
    out = {
        "machine": machine(),
        "date": today(),
        "commit": commit(),
        "chunks": args.chunks,
        "segment_load_s": round(load_s, 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "latency_excluding_query_embedding": results,
    }
    print(json.dumps(out, indent=2))
    retriever.close()
    store.close()


if __name__ == "__main__":
    main()

"""Search latency on a synthetic index of N chunks (default 100,000), optionally side by side
with another commit (``--baseline``), whose ``src`` is extracted with ``git archive`` and run
in its own worker processes on its own copy of the database:

- query p50/p95 for bm25, dense, hybrid and hybrid with a metadata filter, excluding query
  embedding (the HashingEmbedder embeds queries; its time is subtracted). Two query sets:
  terms drawn uniformly from the vocabulary (mostly rare terms) and Zipf-weighted terms
  (drawn from chunk texts, so common terms are common);
- cold start: the first search in a fresh process, with and without the segment cache (the
  database and cache files are in the OS page cache; "process" includes Python start-up and
  imports, "in process" is opening the store plus the first search);
- "upsert 1 document (100 chunks), then search": replaces an existing document (100 rows
  deleted, 100 added), then runs one hybrid search; median of 7;
- a cold start whose cache is 7 writes old (loaded, then refreshed), and what the compaction
  of such a segment (and the cache save that follows it) costs.

Workers take turns, in rotating order, so that background load falls on both alike. A
baseline before schema version 2 needs a version-1 database: build bench/out with it (the
script does when the file is missing); newer code upgrades its copy when it opens it.

    .venv/bin/python bench/search_latency.py [--chunks 100000] [--queries 300] [--rounds 3]
        [--baseline 4a1f0c4]

Text: Zipf-distributed words from a 40k vocabulary, ~120 words a chunk; vectors: random unit
vectors (384 dims). The index is built once under bench/out/ and copied for each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import REPO, commit, machine, pct, peak_rss_mib, today

DIM = 384
PER_DOC = 100
COLL = "synth"
OUT = REPO / "bench" / "out"


def vocabulary(n: int, rng: np.random.Generator) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, size=int(rng.integers(3, 10)))) for _ in range(n)]


def texts_for(rng: np.random.Generator, vocab: list[str], probs: np.ndarray) -> list[str]:
    words = rng.choice(len(vocab), size=(PER_DOC, 120), p=probs)
    return [" ".join(vocab[w] for w in row) for row in words]


def unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def document(d: int, texts: list[str]) -> tuple[Any, list[Any]]:
    from ragkeel.types import Chunk, Document

    doc = Document(f"d{d}", COLL, f"/synth/{d}.txt", f"doc {d}", "\n\n".join(texts), f"h{d}")
    chunks, pos = [], 0
    for i, t in enumerate(texts):
        meta = {"bucket": d % 10}
        chunks.append(
            Chunk(
                f"d{d}-{i}", doc.id, COLL, i, t, pos, pos + len(t), source=doc.source, metadata=meta
            )
        )
        pos += len(t) + 2
    return doc, chunks


def build(path: Path, n_chunks: int) -> None:
    from ragkeel.storage.sqlite import SqliteDocumentStore

    rng = np.random.default_rng(7)
    store = SqliteDocumentStore(path)
    vocab = vocabulary(40_000, rng)
    probs = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    probs /= probs.sum()
    t0 = time.perf_counter()
    for d in range(n_chunks // PER_DOC):
        doc, chunks = document(d, texts_for(rng, vocab, probs))
        store.upsert_document(
            doc, chunks, unit_vectors(rng, PER_DOC), embedding_model="hashing-384"
        )
        if d % 100 == 0:
            elapsed = time.perf_counter() - t0
            print(f"  built {(d + 1) * PER_DOC} chunks in {elapsed:.0f} s", file=sys.stderr)
    store.close()


# -- worker: one implementation, commands as JSON lines on stdin ----------------------------------
class Worker:
    def __init__(self) -> None:
        self.store: Any = None
        self.retriever: Any = None

    def open(self, db: str, cache: bool | None) -> dict[str, Any]:
        import ragkeel
        from ragkeel.embeddings.hashing import HashingEmbedder
        from ragkeel.retrieval.hybrid import HybridRetriever
        from ragkeel.storage.sqlite import SqliteDocumentStore

        t0 = time.perf_counter()
        kwargs = {} if cache is None else {"segment_cache": cache}
        self.store = SqliteDocumentStore(db, **kwargs)
        self.retriever = HybridRetriever(
            self.store, self.store.keyword, self.store.vectors, HashingEmbedder(DIM)
        )
        return {"ms": (time.perf_counter() - t0) * 1000, "module": ragkeel.__file__}

    def search_ms(self, query: str, mode: str = "hybrid", bucket: int | None = None) -> float:
        from ragkeel.storage.filters import Filter

        meta = {} if bucket is None else {"bucket": bucket}
        r = self.retriever.search(query, 10, mode=mode, flt=Filter(collection=COLL, metadata=meta))
        return float(r.timings_ms["total_ms"] - r.timings_ms.get("embed_ms", 0.0))

    def first(self, query: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        self.search_ms(query)
        return {"ms": (time.perf_counter() - t0) * 1000, "events": self._events()}

    def segment(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        self.store.segment(COLL)
        return {"ms": (time.perf_counter() - t0) * 1000, "events": self._events()}

    def _events(self) -> dict[str, int]:
        segments = getattr(self.store, "segments", None)
        return dict(getattr(segments, "events", {}))

    def latency(self, queries: list[str], mode: str, bucket: int | None) -> list[float]:
        for q in queries[:20]:  # warm-up
            self.search_ms(q, mode, bucket)
        return [self.search_ms(q, mode, bucket) for q in queries]

    def upsert(self, d: int, texts: list[str], seed: int, query: str) -> dict[str, float]:
        doc, chunks = document(d, texts)
        vecs = unit_vectors(np.random.default_rng(seed), len(chunks))
        t0 = time.perf_counter()
        self.store.upsert_document(doc, chunks, vecs, embedding_model="hashing-384")
        t1 = time.perf_counter()
        self.search_ms(query)
        t2 = time.perf_counter()
        return {
            "upsert_ms": (t1 - t0) * 1000,
            "search_ms": (t2 - t1) * 1000,
            "total_ms": (t2 - t0) * 1000,
        }

    def compact(self) -> dict[str, float]:
        """Fold the delta and tombstones into a new base and save it (current code only)."""
        seg = self.store.segment(COLL)
        t0 = time.perf_counter()
        compacted = seg.compacted()
        t1 = time.perf_counter()
        self.store.segments._cache.save(COLL, seg.uid, seg.generation, compacted.base)
        t2 = time.perf_counter()
        return {
            "rows": seg.size,
            "delta_rows": seg.delta_size,
            "dead_rows": seg.dead,
            "compact_ms": (t1 - t0) * 1000,
            "save_ms": (t2 - t1) * 1000,
        }

    def rss(self) -> float:
        return peak_rss_mib()

    def build(self, path: str, n_chunks: int) -> None:
        build(Path(path), n_chunks)


def worker_main() -> None:
    w = Worker()
    for line in sys.stdin:
        cmd = json.loads(line)
        name = cmd.pop("cmd")
        if name == "quit":
            break
        print(json.dumps(getattr(w, name)(**cmd)), flush=True)


class Proc:
    def __init__(self, src: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(src)}
        self.p = subprocess.Popen(
            [sys.executable, __file__, "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )

    def __call__(self, cmd: str, **kw: Any) -> Any:
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write('{"cmd": "quit"}\n')
        self.p.stdin.close()
        self.p.wait(timeout=60)


# -- orchestration ---------------------------------------------------------------------------------
def schema_version(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])


def extract(ref: str) -> Path:
    dest = OUT / f"baseline-{ref}"
    if not (dest / "src" / "ragkeel").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", ref, "src"], cwd=REPO, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest / "src"


def query_sets(db: Path, n: int, rng: np.random.Generator) -> dict[str, list[str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        terms = [r[0] for r in conn.execute("SELECT term FROM vocab ORDER BY id")]
        (top,) = conn.execute("SELECT max(rowid) FROM chunks").fetchone()
        picks = [int(x) for x in rng.integers(1, top + 1, size=n)]
        marks = ",".join("?" * len(picks))
        texts = [
            r[0] for r in conn.execute(f"SELECT text FROM chunks WHERE rowid IN ({marks})", picks)
        ]
    uniform = [" ".join(rng.choice(terms, size=int(rng.integers(3, 12)))) for _ in range(n)]
    zipf = [
        " ".join(rng.choice(texts[i % len(texts)].split(), size=int(rng.integers(3, 12))))
        for i in range(n)
    ]
    return {"uniform": uniform, "zipf": zipf}


def stats(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(samples, 50), 2), "p95_ms": round(pct(samples, 95), 2)}


def cold(src: Path, db: Path, cache: bool | None, query: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    p = Proc(src)
    opened = p("open", db=str(db), cache=cache)
    first = p("first", query=query)
    process_ms = (time.perf_counter() - t0) * 1000
    p.close()
    return {
        "process_ms": process_ms,
        "in_process_ms": opened["ms"] + first["ms"],
        "events": first["events"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", help="git ref to compare against, e.g. HEAD~1")
    args = ap.parse_args()
    pristine = OUT / f"synthetic-{args.chunks}.db"
    OUT.mkdir(parents=True, exist_ok=True)
    impls = {"current": REPO / "src"}
    if args.baseline:
        impls = {"baseline": extract(args.baseline), **impls}
    if not pristine.exists():  # built by the oldest implementation, so that all can read it
        builder = Proc(next(iter(impls.values())))
        builder("build", path=str(pristine), n_chunks=args.chunks)
        builder.close()
    load_before = os.getloadavg()
    rng = np.random.default_rng(7)
    queries = query_sets(pristine, args.queries, rng)
    dbs: dict[str, Path] = {}
    for name in impls:
        work = OUT / "latency-work" / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        dbs[name] = work / pristine.name
        shutil.copy(pristine, dbs[name])
        if name == "baseline" and schema_version(pristine) != 1:
            sys.exit("the baseline needs a version-1 database: rebuild bench/out with it")
    out: dict[str, dict[str, Any]] = {n: {} for n in impls}
    workers = {n: Proc(src) for n, src in impls.items()}
    for n, w in workers.items():  # open (migrates a v1 copy), build the segment, save the cache
        opened = w("open", db=str(dbs[n]), cache=None)
        out[n]["ragkeel_module"] = str(Path(opened["module"]).relative_to(REPO))
        out[n]["open_ms"] = round(opened["ms"], 1)
        seg = w("segment")
        out[n]["first_segment_build_ms"] = round(seg["ms"], 1)
        seg_dir = dbs[n].parent / "segments"
        if seg_dir.exists():
            size = sum(f.stat().st_size for f in seg_dir.rglob("*") if f.is_file())
            out[n]["segment_cache_mib"] = round(size / 2**20, 1)
    probe = queries["uniform"][0]
    variants = [(n, None) for n in impls if n != "current"] + [
        ("current", False),
        ("current", True),
    ]
    cold_runs: dict[str, list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        for n, cache in variants[r % len(variants) :] + variants[: r % len(variants)]:
            label = n if cache is None else f"{n}, segment_cache={cache}"
            cold_runs.setdefault(label, []).append(cold(impls[n], dbs[n], cache, probe))
    cold_start = {
        label: {
            "process_ms": round(float(np.median([x["process_ms"] for x in runs])), 1),
            "in_process_ms": round(float(np.median([x["in_process_ms"] for x in runs])), 1),
            "events": runs[-1]["events"],
        }
        for label, runs in cold_runs.items()
    }
    modes = [("bm25", "bm25", None), ("dense", "dense", None), ("hybrid", "hybrid", None)]
    modes.append(("hybrid+metadata filter", "hybrid", 3))
    samples: dict[str, dict[str, list[float]]] = {n: {} for n in impls}
    order = list(workers)
    for r in range(args.rounds):
        for qname, qs in queries.items():
            for label, mode, bucket in modes:
                if qname == "zipf" and mode == "dense":
                    continue  # dense does not depend on the words
                for n in order[r % len(order) :] + order[: r % len(order)]:
                    got = workers[n]("latency", queries=qs, mode=mode, bucket=bucket)
                    samples[n].setdefault(f"{label} ({qname} terms)", []).extend(got)
    vocab = vocabulary(40_000, np.random.default_rng(7))
    probs = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    probs /= probs.sum()
    writes: dict[str, list[dict[str, float]]] = {n: [] for n in impls}
    for i in range(7):
        texts = texts_for(np.random.default_rng(1000 + i), vocab, probs)
        for n in order[i % len(order) :] + order[: i % len(order)]:
            got = workers[n](
                "upsert", d=10 + i, texts=texts, seed=2000 + i, query=queries["uniform"][i]
            )
            writes[n].append(got)
    for n, w in workers.items():
        out[n]["segment_events"] = w("segment")["events"]
        out[n]["peak_rss_mib"] = round(w("rss"), 1)
        w.close()
        out[n]["latency_excluding_query_embedding"] = {k: stats(v) for k, v in samples[n].items()}
        out[n]["upsert_100_chunks_then_search_ms (median of 7)"] = {
            k: round(float(np.median([x[k] for x in writes[n]])), 1) for k in writes[n][0]
        }
        out[n]["upsert_then_search_max_total_ms"] = round(max(x["total_ms"] for x in writes[n]), 1)
        out[n]["cold_start"] = {k: v for k, v in cold_start.items() if k.startswith(n)}
    stale = [cold(impls["current"], dbs["current"], True, probe) for _ in range(args.rounds)]
    out["current"]["cold_start"]["current, segment_cache=True, cache 7 writes old"] = {
        "process_ms": round(float(np.median([x["process_ms"] for x in stale])), 1),
        "in_process_ms": round(float(np.median([x["in_process_ms"] for x in stale])), 1),
        "events": stale[-1]["events"],
    }
    w = Proc(impls["current"])  # what the compaction due after ~10% of new rows costs
    w("open", db=str(dbs["current"]), cache=True)
    out["current"]["compaction"] = {k: round(v, 1) for k, v in w("compact").items()}
    w.close()
    result = {
        "machine": machine(),
        "date": today(),
        "commit": commit(),
        "baseline": args.baseline,
        "chunks": args.chunks,
        "queries": args.queries,
        "rounds": args.rounds,
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "implementations": out,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker_main()
    else:
        main()

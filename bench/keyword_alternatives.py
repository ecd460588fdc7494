"""ragkeel's keyword index (BM25 postings in SQLite, scored in numpy) against SQLite FTS5.

    .venv/bin/python bench/keyword_alternatives.py [--scale-docs 100000] [--queries 300]

Part 1, BEIR SciFact test split (document level: title + " " + text, no chunking): nDCG@10,
Recall@100, build time and per-query latency for ragkeel, FTS5 (porter unicode61), FTS5 over
ragkeel's pre-analysed text (same analyser, FTS5's bm25() scoring) and bm25s if installed.
Part 2, a synthetic corpus (Zipf words, 40k made-up vocabulary, ~120 words a document): build
time, cold start, latency, and a write followed by a read. Every engine writes one transaction
per document (WAL, synchronous=NORMAL); engines are interleaved per document and per query
(rotating order) so machine noise hits all of them alike. Latency = query string in, top-100 out.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from common import DATASETS, commit, machine, pct, today
from ragkeel.evaluation.datasets.beir import load_beir
from ragkeel.evaluation.metrics.retrieval import evaluate
from ragkeel.storage.analyzer import analyze
from ragkeel.storage.filters import Filter
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import Chunk, Document

try:
    import bm25s
    import Stemmer
except ImportError:  # optional reference, never a project dependency
    bm25s = None

K = 100
COLL = "c"
FLT = Filter(collection=COLL)
WORD = re.compile(r"[^\W_]+")  # what unicode61 keeps as token characters (no '_')
Hits = list[tuple[str, float]]
Engine = Callable[[str], Hits]


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def disk_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20


class Ragkeel:
    def __init__(self, path: Path) -> None:
        self.path, self.store = path, SqliteDocumentStore(path)

    def add(self, doc_id: str, text: str) -> None:
        doc = Document(doc_id, COLL, f"/{doc_id}", "", text, doc_id)
        chunk = Chunk(doc_id, doc_id, COLL, 0, text, 0, len(text))
        vec = np.zeros((1, 1), np.float32)
        self.store.upsert_document(doc, [chunk], vec, embedding_model="none")

    def search(self, query: str) -> Hits:
        return [(h.chunk_id, h.score) for h in self.store.keyword.search(query, K, FLT)]


class Fts5:
    """``analysed``: index ragkeel's analysed terms (analyser isolated from the scoring)."""

    def __init__(self, path: Path, analysed: bool) -> None:
        self.path, self.analysed = path, analysed
        tok = "unicode61 remove_diacritics 0 tokenchars '_'" if analysed else "porter unicode61"
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            f'CREATE VIRTUAL TABLE IF NOT EXISTS f USING fts5(id UNINDEXED, body, tokenize="{tok}")'
        )

    def add(self, doc_id: str, text: str) -> None:
        body = " ".join(analyze(text)) if self.analysed else text
        self.db.execute("BEGIN")
        self.db.execute("INSERT INTO f(id, body) VALUES (?, ?)", (doc_id, body))
        self.db.execute("COMMIT")

    def search(self, query: str) -> Hits:
        terms = analyze(query) if self.analysed else WORD.findall(query)
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)  # \w has no '"': quoting is enough
        sql = "SELECT id, -bm25(f) FROM f WHERE f MATCH ? ORDER BY bm25(f) LIMIT ?"
        return self.db.execute(sql, (match, K)).fetchall()


def interleaved(fns: dict[str, Callable[[Any], Any]], items: list, warm: int = 0) -> tuple:
    """Call every fn on every item, rotating the order per item; per-call ms and results."""
    for item in items[:warm]:  # warm-up, not timed
        for fn in fns.values():
            fn(item)
    names, times, out = list(fns), {n: [] for n in fns}, {n: [] for n in fns}
    for i, item in enumerate(items):
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            t0 = time.perf_counter()
            out[name].append(fns[name](item))
            times[name].append((time.perf_counter() - t0) * 1000)
    return times, out


def lat(samples: list[float]) -> str:
    return f"{pct(samples, 50):.2f} | {pct(samples, 95):.2f}"


def scifact(tmp: Path) -> list[str]:
    ds = load_beir(DATASETS / "scifact", "test")
    docs = [(d.id, f"{d.title} {d.text}") for d in ds.corpus()]
    qids = list(ds.queries)
    rk = Ragkeel(tmp / "rk.db")
    idx: dict[str, Ragkeel | Fts5] = {
        "ragkeel (numpy BM25 segment)": rk,
        "FTS5 porter unicode61": Fts5(tmp / "porter.db", analysed=False),
        "FTS5 over ragkeel's analysed terms": Fts5(tmp / "analysed.db", analysed=True),
    }
    spent, _ = interleaved({n: lambda d, e=e: e.add(*d) for n, e in idx.items()}, docs)
    build = {n: sum(v) / 1000 for n, v in spent.items()}
    t0 = time.perf_counter()
    rk.store.segment(COLL)
    seg_s = time.perf_counter() - t0
    engines: dict[str, Engine] = {n: e.search for n, e in idx.items()}
    for k1 in (1.2, 1.5) if bm25s is not None else ():
        name = f"bm25s k1={k1}" + (" (its default, as published)" if k1 == 1.5 else "")
        t0 = time.perf_counter()
        engines[name] = bm25s_engine([t for _, t in docs], [i for i, _ in docs], k1)
        build[name] = time.perf_counter() - t0
    times, hits = interleaved(engines, [ds.queries[q] for q in qids], warm=20)
    rows = [
        f"SciFact test: {len(docs)} documents, {len(qids)} queries, top-{K}.\n",
        "| engine | nDCG@10 | Δ [95% CI] | Recall@100 | Δ [95% CI] | build s | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base: dict[str, np.ndarray] = {}
    rng = np.random.default_rng(0)
    for name in engines:
        run = {qid: dict(h) for qid, h in zip(qids, hits[name], strict=True)}
        ev = evaluate(ds.qrels, run, ["ndcg_cut_10", "recall_100"])
        cells = []
        for metric in ("ndcg_cut_10", "recall_100"):
            per_q = np.array([v[metric] for v in ev.per_query.values()])
            d = per_q - base.setdefault(metric, per_q)  # paired with ragkeel, per query
            lo, hi = np.percentile(rng.choice(d, size=(2000, len(d))).mean(axis=1), [2.5, 97.5])
            cells.append(f"{ev.means[metric]:.4f} | {d.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]")
        rows.append(f"| {name} | {' | '.join(cells)} | {build[name]:.1f} | {lat(times[name])} |")
    rows.append("\nΔ: mean per-query difference to ragkeel, 95% CI by paired bootstrap (2000x).")
    rows.append(
        f"\nragkeel segment load (first search after the writes; not in build s): {seg_s * 1000:.0f} ms"
    )
    return rows if bm25s is not None else [*rows, "bm25s is not installed: rows skipped."]


def bm25s_engine(texts: list[str], ids: list[str], k1: float) -> Engine:
    stem = Stemmer.Stemmer("english")
    toks = bm25s.tokenize(texts, stopwords="en", stemmer=stem, show_progress=False)
    ref = bm25s.BM25(k1=k1, b=0.75, method="lucene")
    ref.index(toks, show_progress=False)

    def search(q: str) -> Hits:
        qt = bm25s.tokenize(
            [q], stopwords="en", stemmer=stem, return_ids=False, show_progress=False
        )
        found, scores = ref.retrieve(qt, k=K, show_progress=False, n_threads=0)
        return [(ids[d], float(s)) for d, s in zip(found[0], scores[0], strict=True) if s > 0]

    return search


def synthetic_docs(n: int, rng: np.random.Generator) -> tuple[list, list[str], np.ndarray]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, size=int(rng.integers(3, 10)))) for _ in range(40_000)]
    probs = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    probs /= probs.sum()
    lengths = rng.integers(80, 161, size=n)  # ~120 words a document
    words = np.split(rng.choice(len(vocab), size=int(lengths.sum()), p=probs), np.cumsum(lengths))
    return [(f"d{d}", " ".join(vocab[w] for w in words[d])) for d in range(n)], vocab, probs


def scale(tmp: Path, n_docs: int, n_queries: int) -> list[str]:
    rng = np.random.default_rng(7)
    docs, vocab, probs = synthetic_docs(n_docs, rng)
    rk, fts = Ragkeel(tmp / "rk-scale.db"), Fts5(tmp / "fts-scale.db", analysed=False)
    spent, _ = interleaved({"rk": lambda d: rk.add(*d), "fts": lambda d: fts.add(*d)}, docs)
    build = {n: sum(v) / 1000 for n, v in spent.items()}
    rk.store.close()
    fts.db.close()
    rk, fts = Ragkeel(rk.path), Fts5(fts.path, analysed=False)  # reopen: cold segment
    before = rss_mib()
    t0 = time.perf_counter()
    rk.store.segment(COLL)
    seg_s = time.perf_counter() - t0
    seg_mib = rss_mib() - before
    probe = " ".join(vocab[w] for w in (100, 1_000, 10_000))  # a mid-frequency query
    t0 = time.perf_counter()
    fts.search(probe)
    fts_first_s = time.perf_counter() - t0
    opt_path = tmp / "fts-opt.db"
    shutil.copy(fts.path, opt_path)
    opt = Fts5(opt_path, analysed=False)
    t0 = time.perf_counter()
    opt.db.execute("INSERT INTO f(f) VALUES ('optimize')")
    opt_s = time.perf_counter() - t0
    mixes = {"uniform over the vocabulary": None, "Zipf-weighted (as in the documents)": probs}
    engines: dict[str, Engine] = {
        "ragkeel": rk.search,
        "FTS5 porter": fts.search,
        "FTS5 porter, after 'optimize'": opt.search,
    }
    rows = [
        f"Synthetic corpus: {n_docs} documents, {n_queries} queries of 3-12 terms per mix, "
        f"top-{K}.\n",
        "| query terms | engine | p50 ms | p95 ms | mean hits |",
        "|---|---|---|---|---|",
    ]
    for mix, p in mixes.items():
        queries = [
            " ".join(vocab[w] for w in rng.choice(len(vocab), size=int(rng.integers(3, 13)), p=p))
            for _ in range(n_queries)
        ]
        times, hits = interleaved(engines, queries, warm=20)
        for name in engines:
            mean_hits = np.mean([len(h) for h in hits[name]])
            rows.append(f"| {mix} | {name} | {lat(times[name])} | {mean_hits:.0f} |")
    # a write followed by a read: ragkeel rebuilds its whole segment, FTS5 updates in place
    upd, _ = interleaved(
        {n: lambda d, e=e: (e.add(*d), e.search(probe)) for n, e in (("rk", rk), ("fts", fts))},
        [(f"new{i}", docs[i][1]) for i in range(7)],
    )
    rows += [
        "\n| | ragkeel | FTS5 porter |",
        "|---|---|---|",
        f"| build s (one transaction per document) | {build['rk']:.0f} | {build['fts']:.0f} |",
        f"| size on disk MiB | {disk_mib(rk.path):.0f} | {disk_mib(fts.path):.0f} |",
        f"| first search after open ms | {seg_s * 1000:.0f} (segment load) | "
        f"{fts_first_s * 1000:.1f} |",
        f"| resident memory after open MiB | +{seg_mib:.0f} (segment) | "
        "SQLite page cache (≤ 2 MiB default) |",
        f"| add 1 document, then search: median ms | {pct(upd['rk'], 50):.0f} | "
        f"{pct(upd['fts'], 50):.1f} |",
        f"\nFTS5 'optimize' (merge all b-tree segments into one): {opt_s:.1f} s; "
        f"ragkeel's database holds the text twice (documents, chunks), FTS5's once.",
    ]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale-docs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    print(f"{machine()}; {today()}; commit {commit()}; SQLite {sqlite3.sqlite_version}\n")
    with tempfile.TemporaryDirectory(prefix="kwalt-") as tmp:
        print("\n".join(scifact(Path(tmp))) + "\n", flush=True)
        if args.scale_docs > 0:
            print("\n".join(scale(Path(tmp), args.scale_docs, args.queries)))


if __name__ == "__main__":
    main()

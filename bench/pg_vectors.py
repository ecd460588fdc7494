"""Dense search on the PostgreSQL store (issue 13): HNSW recall@10 against exact search and
p50/p95 latency, at several ``hnsw.ef_search`` values, on a synthetic *clustered* collection.

    .venv/bin/python bench/pg_vectors.py --centers bench/out/scifact-home/ragkeel.db \\
        --sizes 100000,1000000 [--url postgresql://...] [--out bench/out/pg-vectors.json]

The collection: ``n`` points of a Gaussian mixture around the real all-MiniLM-L6-v2 vectors of
the SciFact chunks (read from a SQLite store that indexed SciFact, e.g. by
``bench/retrieval_scifact.py``), each point = a random centre + Gaussian noise, L2-normalised.
The noise has the centres' own covariance shape (their top ``--noise-rank`` principal
directions, scaled so a point lies at cosine ~``--cosine`` 0.85 from its centre): neighbours
differ along the directions real passages differ along. Isotropic noise (``--noise-rank 0``)
makes every point of a cluster equidistant from a query in 384 dimensions — as hard for HNSW as
uniform random vectors, and unlike real text. Queries: 200 more points of the same mixture, not in the collection. Ground truth: the
exact top 10 by numpy (float32 dot products over all points).

Load: COPY into the store's tables (binary), then the collection's HNSW index is built once
(``rebuild_vector_index``; ``maintenance_work_mem`` 8 GB for the build, so the graph is built in
memory). Searches go through ``PostgresVectorIndex.search`` (k=10, exact threshold 0 so the index
answers), one connection, after 20 warm-up queries. Without ``--url`` a server is started with
``ragkeel.testing.services`` under ``--root`` and stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from common import REPO, commit, machine, pct, today
from ragkeel.storage.filters import Filter
from ragkeel.storage.postgres import PostgresDocumentStore
from ragkeel.storage.postgres.store import connect
from ragkeel.testing import services

F32 = npt.NDArray[np.float32]
DOCS_PER = 1000  # chunks per synthetic document


def centres(path: Path) -> F32:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT vector FROM chunk_vectors").fetchall()
    return np.stack([np.frombuffer(r[0], np.float32) for r in rows])


def noise_basis(c: F32, rank: int, cosine: float) -> F32:
    """(rank, dim): the centres' top principal directions scaled by their spread, times the
    factor that puts a point at about ``cosine`` from its centre (isotropic when rank is 0)."""
    dim = c.shape[1]
    if rank <= 0:
        return np.eye(dim, dtype=np.float32) * np.float32(np.sqrt((1 / cosine**2 - 1) / dim))
    _, sv, vt = np.linalg.svd(c - c.mean(axis=0), full_matrices=False)
    std = sv[:rank] / np.sqrt(len(c))
    scale = np.sqrt((1 / cosine**2 - 1) / float(np.sum(std**2)))
    return (vt[:rank] * (std * scale)[:, None]).astype(np.float32)


def mixture(c: F32, n: int, basis: F32, rng: np.random.Generator) -> F32:
    """``n`` points: a random centre plus Gaussian noise shaped by ``basis``, normalised."""
    out = np.empty((n, c.shape[1]), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        z = rng.standard_normal((m, len(basis)), dtype=np.float32)
        x = c[rng.integers(len(c), size=m)] + z @ basis
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def load(url: str, points: F32, m: int, ef_construction: int) -> tuple[float, float]:
    """COPY the points as one collection 'synthetic' of the default tenant; (copy s, index s)."""
    n, dim = points.shape
    with connect(url) as conn:
        conn.execute("ALTER DATABASE " + conn.info.dbname + " SET maintenance_work_mem = '8GB'")
    store = PostgresDocumentStore(url, pool_size=1, hnsw_m=m, hnsw_ef_construction=ef_construction)
    t0 = time.perf_counter()
    with connect(url) as conn:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        cid = conn.execute(
            "INSERT INTO collections(tenant, name, embedding_model, dimension, chunk_count) "
            "VALUES ('default', 'synthetic', 'all-MiniLM-L6-v2', %s, %s) RETURNING id",
            (dim, n),
        ).fetchone()[0]
        docs = (n + DOCS_PER - 1) // DOCS_PER
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY documents(collection_id, id, source, title, text, content_hash, chunk_count, "
                "updated_at) FROM STDIN"
            ) as copy,
        ):
            for d in range(docs):
                copy.write_row((cid, f"doc{d}", f"/synthetic/{d}", "", "", f"h{d}", DOCS_PER, 0))
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY chunks(collection_id, tenant, id, document_id, ordinal, text, start_, end_, "
                "title, source, token_count, length, embedding) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy,
        ):
            copy.set_types(
                [
                    "int4",
                    "text",
                    "text",
                    "text",
                    "int4",
                    "text",
                    "int4",
                    "int4",
                    "text",
                    "text",
                    "int4",
                    "int4",
                    "vector",
                ]
            )
            for i in range(n):
                d = i // DOCS_PER
                copy.write_row(
                    (
                        cid,
                        "default",
                        f"s{i}",
                        f"doc{d}",
                        i % DOCS_PER,
                        "",
                        0,
                        0,
                        "",
                        f"/synthetic/{d}",
                        0,
                        0,
                        points[i],
                    )
                )
    copy_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    store.rebuild_vector_index("synthetic")
    index_s = time.perf_counter() - t0
    with connect(url) as conn:
        conn.execute("VACUUM ANALYZE chunks")
    store.close()
    return copy_s, index_s


def truth(points: F32, queries: F32, k: int = 10) -> list[set[str]]:
    out = []
    for q in queries:
        scores = points @ q
        top = np.argpartition(-scores, k)[:k]
        out.append({f"s{i}" for i in top})
    return out


def timed_searches(
    url: str,
    queries: Sequence[F32],
    want: Sequence[set[str]],
    *,
    ef: int | None,
    flt: Filter | None = None,
    warmup: int = 20,
) -> dict[str, float]:
    """recall@10 against ``want`` and p50/p95 latency of ``PostgresVectorIndex.search`` (k=10):
    the HNSW index at ``ef`` (a store per value: its connections' sessions have it set), or
    the exact scan when ``ef`` is None."""
    store = PostgresDocumentStore(
        url,
        pool_size=1,
        exact_search_max_rows=10**12 if ef is None else 0,
        hnsw_ef_search=ef or 40,
    )
    try:
        for q in queries[:warmup]:
            store.vectors.search(q, 10, flt)
        lat, rec = [], []
        for q, w in zip(queries, want, strict=True):
            t0 = time.perf_counter()
            hits = store.vectors.search(q, 10, flt)
            lat.append((time.perf_counter() - t0) * 1000)
            rec.append(len({h.chunk_id for h in hits} & w) / 10)
    finally:
        store.close()
    return {
        "recall@10": round(float(np.mean(rec)), 4),
        "min_recall@10": round(float(np.min(rec)), 2),
        "queries_recall_below_0.5": int(np.sum(np.asarray(rec) < 0.5)),
        "p50_ms": round(pct(lat, 50), 2),
        "p95_ms": round(pct(lat, 95), 2),
        "queries": len(lat),
    }


def measure(url: str, queries: F32, want: list[set[str]], efs: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ef in efs:
        out[f"ef{ef}"] = timed_searches(url, list(queries), want, ef=ef)
        print(ef, out[f"ef{ef}"], flush=True)
    out["exact"] = timed_searches(url, list(queries[:30]), want[:30], ef=None, warmup=2)
    print("exact", out["exact"], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--centers", type=Path, default=REPO / "bench/out/scifact-home/ragkeel.db")
    ap.add_argument("--sizes", default="100000")
    ap.add_argument("--cosine", type=float, default=0.85, help="a point's cosine to its centre")
    ap.add_argument("--noise-rank", type=int, default=64, help="0: isotropic noise")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--m", type=int, default=16, help="HNSW links per node (the store's default)")
    ap.add_argument("--ef-construction", type=int, default=64, help="the store's default")
    ap.add_argument("--ef", default="20,40,64,100,200")
    ap.add_argument("--url", help="a server to use (its databases vec<N> are replaced)")
    ap.add_argument("--root", type=Path, default=REPO / "bench/out/pg-vectors-server")
    ap.add_argument("--out", type=Path, default=REPO / "bench/out/pg-vectors.json")
    args = ap.parse_args()
    c = centres(args.centers)
    server = None if args.url else services.start_postgres(args.root)
    result: dict[str, Any] = {
        "machine": machine(),
        "date": today(),
        "commit": commit(),
        "centres": len(c),
        "cosine_to_centre": args.cosine,
        "noise_rank": args.noise_rank,
        "hnsw_m": args.m,
        "hnsw_ef_construction": args.ef_construction,
        "runs": {},
    }
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            rng = np.random.default_rng(n)
            basis = noise_basis(c, args.noise_rank, args.cosine)
            points = mixture(c, n, basis, rng)
            queries = mixture(c, args.queries, basis, np.random.default_rng(n + 1))
            cos = float(np.mean(np.sort(points[:2000] @ queries[:50].T, axis=0)[-1]))
            name = f"vec{n}"
            if server is not None:
                services.drop_database(server, name)
                url = services.create_database(server, name)
            else:
                url = args.url.rsplit("/", 1)[0] + "/" + name
                with connect(args.url) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {name}")
                    conn.execute(f"CREATE DATABASE {name}")
            copy_s, index_s = load(url, points, args.m, args.ef_construction)
            print(n, "copy", round(copy_s, 1), "index", round(index_s, 1), flush=True)
            want = truth(points, queries)
            run = {
                "copy_s": round(copy_s, 1),
                "hnsw_build_s": round(index_s, 1),
                "nearest_of_2000_cosine": round(cos, 3),
            }
            run.update(measure(url, queries, want, [int(e) for e in args.ef.split(",")]))
            result["runs"][str(n)] = run
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(result, indent=2))
    finally:
        if server is not None:
            server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""SciFact on the PostgreSQL store against SQLite (issue 13): nDCG@10 & co. for bm25, dense and
hybrid on both backends; PostgreSQL full-text search (``ts_rank_cd``) as the keyword half
instead of the BM25 postings; dense recall@10 of HNSW against exact search at SciFact size with
p50/p95 latency per ``hnsw.ef_search``.

    .venv/bin/python bench/retrieval_scifact.py --home bench/out/scifact-home   # SQLite first
    .venv/bin/python bench/pg_scifact.py --home bench/out/scifact-home [--url postgresql://...]

The SQLite run indexes SciFact and fills the embedding cache; this script evaluates that store
again, then ingests the same corpus into PostgreSQL through the normal pipeline (vectors from
the cache, so both backends hold the same chunks and vectors) and evaluates it. Without
``--url`` a server is started with ``ragkeel.testing.services`` and stopped at the end.

Full-text variant: a stored generated ``tsvector`` column (``english`` configuration, title +
text) with a GIN index, queried with the query's lexemes OR-ed (``websearch``/``plainto`` AND
every term, which loses most SciFact claims) and ranked by ``ts_rank_cd`` (normalisation 0 and
1: divided by 1 + log(length)); wired into the same ``HybridRetriever`` as the keyword half.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import REPO, commit, machine, today
from pg_vectors import timed_searches
from ragkeel.container import Container
from ragkeel.evaluation.datasets.beir import BeirDataset, load_beir
from ragkeel.evaluation.run.retrieval import collection_name, evaluate_beir, index_corpus
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.settings import load_settings
from ragkeel.storage.filters import Filter
from ragkeel.storage.postgres import PostgresDocumentStore
from ragkeel.storage.tenancy import scope_or_default
from ragkeel.testing import services
from ragkeel.types import AccessScope, ScoredChunk

MODES = ("bm25", "dense", "hybrid")


class FullTextIndex:
    """A ``KeywordIndex`` over PostgreSQL full-text search (``ts_rank_cd``), for comparison."""

    def __init__(self, store: PostgresDocumentStore, normalization: int) -> None:
        self.store, self.normalization = store, normalization

    def search(
        self, query: str, k: int, flt: Filter | None = None, *, scope: AccessScope | None = None
    ) -> list[ScoredChunk]:
        access = scope_or_default(scope)
        cols = self.store.search_collections(access.tenant, flt.collection if flt else None)
        with self.store.connection() as conn:
            rows = conn.execute(
                "WITH q AS (SELECT nullif(replace(strip(to_tsvector('english', %s))::text, "
                "' ', ' | '), '')::tsquery AS q) "
                "SELECT c.id, ts_rank_cd(c.tsv, q.q, %s) AS r FROM chunks c, q "
                "WHERE c.collection_id = ANY(%s) AND c.tsv @@ q.q ORDER BY r DESC, c.pk LIMIT %s",
                (query, self.normalization, [c.id for c in cols], k),
            ).fetchall()
        return [ScoredChunk(r[0], float(r[1]), i + 1) for i, r in enumerate(rows)]


def evaluate(
    dataset: BeirDataset,
    container: Container,
    retriever: HybridRetriever,
    out_dir: Path,
    modes: tuple[str, ...] = MODES,
) -> dict[str, dict[str, float]]:
    out = {}
    for mode in modes:
        outcome = evaluate_beir(
            dataset, container.pipeline, retriever, mode, out_dir, reindex=False
        )
        m = outcome.report.metrics
        out[mode] = {
            "ndcg@10": round(m["ndcg_cut_10"], 4),
            "recall@10": round(m["recall_10"], 4),
            "recall@100": round(m["recall_100"], 4),
            "mrr@10": round(m["mrr_10"], 4),
            "p50_no_embed_ms": round(outcome.latency_no_embed_p50_ms, 2),
            "p95_no_embed_ms": round(outcome.latency_no_embed_p95_ms, 2),
        }
        print(mode, json.dumps(out[mode]), flush=True)
    return out


def dense_recall(
    url: str, queries: list[np.ndarray[Any, Any]], efs: list[int], flt: Filter
) -> dict[str, dict[str, float]]:
    """recall@10 of the HNSW index against the exact scan, and both latencies."""
    exact = PostgresDocumentStore(url, pool_size=1, exact_search_max_rows=10**12)
    try:
        want = [{h.chunk_id for h in exact.vectors.search(q, 10, flt)} for q in queries]
    finally:
        exact.close()
    out = {"exact": timed_searches(url, queries, want, ef=None, flt=flt)}
    for ef in efs:
        out[f"ef{ef}"] = timed_searches(url, queries, want, ef=ef, flt=flt)
        print("dense", ef, out[f"ef{ef}"], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, default=REPO / "bench" / "out" / "scifact-home")
    ap.add_argument("--split", default="test")
    ap.add_argument("--url", help="an empty database to use")
    ap.add_argument("--root", type=Path, default=REPO / "bench/out/pg-scifact-server")
    ap.add_argument("--ef", default="10,20,40,64,100")
    ap.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL figures only")
    ap.add_argument("--keep-db", action="store_true", help="reuse the server's database")
    ap.add_argument(
        "--dense-only",
        action="store_true",
        help="only HNSW vs exact (with --keep-db: on the database a run kept; else indexed first)",
    )
    args = ap.parse_args()
    dataset = load_beir(REPO.parent / "shared" / "datasets" / "scifact", args.split)
    result: dict[str, Any] = {"machine": machine(), "date": today(), "commit": commit()}
    if not args.skip_sqlite:
        with Container(load_settings(home=args.home)) as sqlite:
            index_corpus(dataset, sqlite.pipeline)
            result["sqlite"] = evaluate(
                dataset, sqlite, sqlite.retriever, args.home / "eval-sqlite"
            )
    server = None
    if args.url is None:
        kept = args.keep_db and (args.root / "pgdata").exists()
        server = services.start_postgres(args.root)
        if kept:
            url = server.url_for("scifact")
        else:
            services.drop_database(server, "scifact")
            url = services.create_database(server, "scifact")
    else:
        url = args.url
    try:
        settings = load_settings(
            home=args.home, storage={"backend": "postgres", "postgres": {"url": url}}
        )
        with Container(settings) as pg:
            if args.dense_only:
                if pg.store.stats().chunks == 0:  # a fresh server: index the corpus first
                    index_corpus(dataset, pg.pipeline)
                flt = Filter(collection=collection_name(dataset))
                qs = [pg.embedder.embed_query(dataset.queries[q]) for q in sorted(dataset.qrels)]
                efs = [int(e) for e in args.ef.split(",")]
                result["dense_hnsw_vs_exact"] = dense_recall(url, qs, efs, flt)
                print(json.dumps(result, indent=2))
                return
            t0 = time.perf_counter()
            report = index_corpus(dataset, pg.pipeline)
            result["postgres_ingest"] = {
                "documents": report.documents_written,
                "chunks": report.chunks_written,
                "embedded_texts": report.embedded_texts,
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print("ingest", result["postgres_ingest"], flush=True)
            result["postgres"] = evaluate(dataset, pg, pg.retriever, args.home / "eval-pg")
            store = pg.store
            assert isinstance(store, PostgresDocumentStore)
            store.vectors.exact_max_rows = 0  # the HNSW index answers every dense search
            result["postgres_hnsw_default_ef"] = evaluate(
                dataset, pg, pg.retriever, args.home / "eval-pg-hnsw", ("dense", "hybrid")
            )
            store.vectors.exact_max_rows = 10_000
            with store.connection() as conn:
                conn.execute(
                    "ALTER TABLE chunks ADD COLUMN IF NOT EXISTS tsv tsvector GENERATED ALWAYS AS "
                    "(to_tsvector('english', title || ' ' || text)) STORED"
                )
                conn.execute("CREATE INDEX IF NOT EXISTS chunks_tsv ON chunks USING gin(tsv)")
            for norm in (0, 1):
                fts = HybridRetriever(store, FullTextIndex(store, norm), store.vectors, pg.embedder)
                result[f"postgres_fts_norm{norm}"] = evaluate(
                    dataset, pg, fts, args.home / f"eval-fts{norm}", ("bm25", "hybrid")
                )
            flt = Filter(collection=collection_name(dataset))
            queries = [pg.embedder.embed_query(dataset.queries[q]) for q in sorted(dataset.qrels)]
            efs = [int(e) for e in args.ef.split(",")]
            result["dense_hnsw_vs_exact"] = dense_recall(url, queries, efs, flt)
    finally:
        if server is not None:
            server.stop()
    out = REPO / "bench" / "out" / "pg-scifact.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""What tenants and ACLs cost a search (issue 11), on the synthetic index of
``search_latency.py`` (default 100,000 chunks in 1,000 documents, one collection):

- query p50/p95 (bm25, dense, hybrid; query embedding excluded) for the operator scope (the
  CLI: every principal, no mask), for a member scope in a collection without any ACL (one
  extra indexed lookup), and for a member scope once 10% of the documents are restricted to a
  group it is not in (a cached ACL row mask);
- what the first search after an ACL change costs (the mask is rebuilt by SQL for the new
  generation), and what ``set_principals`` costs;
- how long opening a version-2 store (before tenants) takes: the upgrade copies ``chunks``.

    .venv/bin/python bench/acl_search.py [--chunks 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import commit, machine, pct, today
from search_latency import COLL, DIM, OUT, PER_DOC, build, query_sets

# turns a version-3 file back into version 2 (the layout before tenants) for the upgrade timing
TO_V2 = """
CREATE TABLE chunks_old (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, collection TEXT NOT NULL,
    document_id TEXT NOT NULL, ordinal INTEGER NOT NULL, text TEXT NOT NULL,
    start INTEGER NOT NULL, end_ INTEGER NOT NULL, title TEXT NOT NULL, source TEXT NOT NULL,
    heading_path TEXT NOT NULL, page INTEGER, token_count INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO chunks_old SELECT rowid, id, collection, document_id, ordinal, text, start, end_,
    title, source, heading_path, page, token_count, metadata FROM chunks;
DROP TABLE chunks;
ALTER TABLE chunks_old RENAME TO chunks;
CREATE INDEX chunks_by_document ON chunks(collection, document_id);
DROP INDEX collections_by_tenant;
ALTER TABLE collections DROP COLUMN tenant;
ALTER TABLE collections DROP COLUMN label;
DROP TABLE document_principals;
UPDATE meta SET value='2' WHERE key='schema_version';
"""


def timed_searches(retriever: Any, queries: list[str], mode: str, scope: Any) -> list[float]:
    out = []
    for q in queries:
        r = retriever.search(q, 10, mode=mode, scope=scope)
        out.append(float(r.timings_ms["total_ms"] - r.timings_ms.get("embed_ms", 0.0)))
    return out


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(samples, 50), 2), "p95_ms": round(pct(samples, 95), 2)}


def main() -> None:
    from ragkeel.embeddings.hashing import HashingEmbedder
    from ragkeel.retrieval.hybrid import HybridRetriever
    from ragkeel.storage.sqlite import SqliteDocumentStore
    from ragkeel.types import AccessScope

    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    pristine = OUT / f"acl-{args.chunks}.db"
    if not pristine.exists():
        build(pristine, args.chunks)
    work = OUT / "acl-work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = work / "store.db"
    shutil.copy(pristine, db)
    queries = query_sets(pristine, args.queries, np.random.default_rng(11))["zipf"]

    store = SqliteDocumentStore(db, segment_cache=False)
    retriever = HybridRetriever(store, store.keyword, store.vectors, HashingEmbedder(DIM))
    operator, member = None, AccessScope(principals=frozenset({"staff"}))
    retriever.search(queries[0], 10, scope=operator)  # builds the segment
    out: dict[str, Any] = {"chunks": args.chunks, "queries": len(queries)}
    for mode in ("bm25", "dense", "hybrid"):
        out[f"{mode}, operator"] = summary(timed_searches(retriever, queries, mode, operator))
        out[f"{mode}, member, no ACLs"] = summary(timed_searches(retriever, queries, mode, member))

    restricted = range(0, args.chunks // PER_DOC, 10)
    t0 = time.perf_counter()
    for d in restricted:
        store.set_principals(COLL, f"d{d}", ["board"])
    out["set_principals_ms_each"] = round((time.perf_counter() - t0) * 1000 / len(restricted), 2)
    t0 = time.perf_counter()
    first = retriever.search(queries[1], 10, mode="hybrid", scope=member)
    out["first_search_after_acl_change_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    chunks = store.get_chunks([h.chunk.id for h in first.hits], scope=operator)
    assert all(int(c.document_id[1:]) % 10 for c in chunks.values()), "an invisible hit"
    for mode in ("bm25", "dense", "hybrid"):
        samples = timed_searches(retriever, queries, mode, member)
        out[f"{mode}, member, 10% restricted"] = summary(samples)
    store.close()

    shutil.copy(pristine, db)
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.executescript(TO_V2)
    t0 = time.perf_counter()
    SqliteDocumentStore(db, segment_cache=False).close()
    out["open_and_upgrade_v2_store_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    out["db_mib"] = round(db.stat().st_size / 2**20, 1)
    out.update({"machine": machine(), "date": today(), "commit": commit()})
    print(json.dumps(out, indent=1))
    Path(OUT / "acl_search.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

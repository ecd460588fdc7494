"""Tune hybrid fusion on SciFact *train* (never on test), then report the chosen setting on test.

    .venv/bin/python bench/tune_fusion.py [--home DIR]

Needs the SciFact collection built by bench/retrieval_scifact.py (same --home). Each query's
keyword and dense candidate lists are fetched once; every fusion setting is then scored on the
same lists, so the comparison is side by side.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import DATASETS, REPO
from ragkeel.container import Container
from ragkeel.evaluation.datasets.beir import BeirDataset, load_beir
from ragkeel.evaluation.metrics.retrieval import evaluate
from ragkeel.evaluation.run.retrieval import collection_name
from ragkeel.retrieval.fusion import dbsf, ranked, rrf, weighted
from ragkeel.settings import load_settings
from ragkeel.storage.filters import Filter
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import ScoredChunk

Lists = dict[str, tuple[list[ScoredChunk], list[ScoredChunk]]]


def candidate_lists(dataset: BeirDataset, container: Container, depth: int) -> Lists:
    flt = Filter(collection=collection_name(dataset))
    store, embedder = container.store, container.embedder
    out: Lists = {}
    for qid in sorted(dataset.qrels):
        q = dataset.queries[qid]
        out[qid] = (
            store.keyword.search(q, depth, flt),
            store.vectors.search(embedder.embed_query(q), depth, flt),
        )
    return out


def score(dataset: BeirDataset, container: Container, lists: Lists, fuse, depth: int) -> float:  # type: ignore[no-untyped-def]
    doc_of: dict[str, str] = {}
    ids = {h.chunk_id for kw, dn in lists.values() for h in (*kw[:depth], *dn[:depth])}
    missing = [i for i in ids if i not in doc_of]
    for cid, chunk in container.store.get_chunks(missing).items():
        doc_of[cid] = chunk.document_id
    run: dict[str, dict[str, float]] = {}
    for qid, (kw, dn) in lists.items():
        docs: dict[str, float] = {}
        for cid, s in ranked(fuse([kw[:depth], dn[:depth]])):
            docs.setdefault(doc_of[cid], s)
        run[qid] = docs
    return evaluate(dataset.qrels, run, ("ndcg_cut_10",)).means["ndcg_cut_10"]


def grid() -> list[tuple[str, object]]:
    settings: list[tuple[str, object]] = []
    for k in (5, 10, 20, 40, 60, 100):
        for w in (0.3, 0.4, 0.5, 0.6, 0.7):
            settings.append((f"rrf k={k} w_kw={w}", lambda ls, k=k, w=w: rrf(ls, (w, 1 - w), k)))
    for w in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        settings.append((f"weighted w_kw={w}", lambda ls, w=w: weighted(ls, (w, 1 - w))))
        settings.append((f"dbsf w_kw={w}", lambda ls, w=w: dbsf(ls, (w, 1 - w))))
    return settings


def bm25_run(dataset: BeirDataset, store: SqliteDocumentStore) -> dict[str, dict[str, float]]:
    flt = Filter(collection=collection_name(dataset))
    run: dict[str, dict[str, float]] = {}
    for qid in sorted(dataset.qrels):
        hits = store.keyword.search(dataset.queries[qid], 200, flt)
        chunks = store.get_chunks([h.chunk_id for h in hits])
        docs: dict[str, float] = {}
        for h in hits:
            docs.setdefault(chunks[h.chunk_id].document_id, h.score)
        run[qid] = docs
    return run


def tune_bm25(train: BeirDataset, test: BeirDataset, db: Path) -> None:
    scores = []
    for k1 in (0.9, 1.2, 1.5, 1.8):
        for b in (0.5, 0.65, 0.75, 0.9):
            store = SqliteDocumentStore(db, bm25_k1=k1, bm25_b=b)
            ndcg = evaluate(train.qrels, bm25_run(train, store), ("ndcg_cut_10",)).means[
                "ndcg_cut_10"
            ]
            scores.append((ndcg, k1, b))
            store.close()
    scores.sort(reverse=True)
    print("bm25 on train (nDCG@10):", [(round(s, 4), k1, b) for s, k1, b in scores[:6]])
    _, k1, b = scores[0]
    for name, (kk, bb) in {"chosen": (k1, b), "lucene default": (1.2, 0.75)}.items():
        store = SqliteDocumentStore(db, bm25_k1=kk, bm25_b=bb)
        ndcg = evaluate(test.qrels, bm25_run(test, store), ("ndcg_cut_10",)).means["ndcg_cut_10"]
        print(f"bm25 {name} k1={kk} b={bb}: test nDCG@10 {ndcg:.4f}")
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, default=REPO / "bench" / "out" / "scifact-home")
    args = ap.parse_args()
    settings = load_settings(home=args.home)
    container = Container(settings)
    train = load_beir(DATASETS / "scifact", "train")
    test = load_beir(DATASETS / "scifact", "test")
    tune_bm25(train, test, settings.database_path)
    lists_train = candidate_lists(train, container, 200)
    results = []
    for depth in (50, 100, 200):
        for name, fuse in grid():
            results.append((score(train, container, lists_train, fuse, depth), depth, name, fuse))
    results.sort(key=lambda r: -r[0])
    print("top settings on train (nDCG@10):")
    for s, depth, name, _ in results[:12]:
        print(f"  {s:.4f}  depth={depth}  {name}")
    best = results[0]
    lists_test = candidate_lists(test, container, 200)
    test_score = score(test, container, lists_test, best[3], best[1])
    print(
        json.dumps(
            {
                "chosen_on_train": f"depth={best[1]} {best[2]}",
                "train_ndcg@10": round(best[0], 4),
                "test_ndcg@10": round(test_score, 4),
            },
            indent=2,
        )
    )
    container.close()


if __name__ == "__main__":
    main()

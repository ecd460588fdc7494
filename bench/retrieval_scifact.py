"""SciFact: ingestion figures, then nDCG@10 & co. and latency for bm25, dense and hybrid on the
test split, with the default (ONNX) embedder.

    .venv/bin/python bench/retrieval_scifact.py [--home DIR] [--split test] [--fresh]

``--fresh`` starts from an empty RAGKEEL_HOME (no store, no embedding cache) so the first ingest
measures real embedding work; the second ingest of the same corpus must embed nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from common import DATASETS, REPO, commit, machine, pct, peak_rss_mib, today
from ragkeel.container import Container
from ragkeel.evaluation.datasets.beir import BeirDataset, load_beir
from ragkeel.evaluation.run.retrieval import collection_name, evaluate_beir, index_corpus
from ragkeel.settings import load_settings
from ragkeel.storage.filters import Filter


def latency_k10(home: Path, dataset: BeirDataset, modes: list[str]) -> dict[str, dict[str, float]]:
    """Production-shaped latency: k=10, no embedding cache (every query is embedded), modes
    interleaved per query so machine noise hits all of them alike."""
    container = Container(load_settings(home=home, embedding={"cache": False}))
    flt = Filter(collection=collection_name(dataset))
    total: dict[str, list[float]] = {m: [] for m in modes}
    no_embed: dict[str, list[float]] = {m: [] for m in modes}
    for qid in sorted(dataset.qrels)[:10]:  # warm-up
        for mode in modes:
            container.retriever.search(dataset.queries[qid], 10, mode=mode, flt=flt)  # type: ignore[arg-type]
    for qid in sorted(dataset.qrels):
        for mode in modes:
            r = container.retriever.search(dataset.queries[qid], 10, mode=mode, flt=flt)  # type: ignore[arg-type]
            total[mode].append(r.timings_ms["total_ms"])
            no_embed[mode].append(r.timings_ms["total_ms"] - r.timings_ms.get("embed_ms", 0.0))
    container.close()
    return {
        m: {
            "p50_ms": round(pct(total[m], 50), 2),
            "p95_ms": round(pct(total[m], 95), 2),
            "p50_no_embed_ms": round(pct(no_embed[m], 50), 2),
            "p95_no_embed_ms": round(pct(no_embed[m], 95), 2),
        }
        for m in modes
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, default=REPO / "bench" / "out" / "scifact-home")
    ap.add_argument("--split", default="test")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--modes", default="bm25,dense,hybrid")
    args = ap.parse_args()
    if args.fresh and args.home.exists():
        shutil.rmtree(args.home)
    settings = load_settings(home=args.home)
    dataset = load_beir(DATASETS / "scifact", args.split)
    container = Container(settings)
    out: dict[str, object] = {"machine": machine(), "date": today(), "commit": commit()}
    t0 = time.perf_counter()
    first = index_corpus(dataset, container.pipeline)
    wall = time.perf_counter() - t0
    out["ingest"] = {
        "documents": first.documents_written,
        "documents_unchanged": first.documents_unchanged,
        "chunks": first.chunks_written,
        "embedded_texts": first.embedded_texts,
        "seconds": round(wall, 2),
        "embed_seconds": round(first.embed_seconds, 2),
        "docs_per_s": round(first.documents_written / wall, 1) if wall else None,
        "chunks_per_s": round(first.chunks_written / wall, 1) if wall else None,
        "total_over_embed": round(wall / first.embed_seconds, 3) if first.embed_seconds else None,
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }
    t0 = time.perf_counter()
    again = index_corpus(dataset, container.pipeline)
    out["reingest"] = {
        "seconds": round(time.perf_counter() - t0, 2),
        "embedded_texts": again.embedded_texts,
        "documents_unchanged": again.documents_unchanged,
    }
    print(json.dumps(out, indent=2), flush=True)
    results = {}
    for mode in args.modes.split(","):
        outcome = evaluate_beir(
            dataset,
            container.pipeline,
            container.retriever,
            mode,  # type: ignore[arg-type]
            args.home / "eval",
            reindex=False,
        )
        m = outcome.report.metrics
        results[mode] = {
            "ndcg@10": round(m["ndcg_cut_10"], 4),
            "recall@10": round(m["recall_10"], 4),
            "recall@100": round(m["recall_100"], 4),
            "mrr@10": round(m["mrr_10"], 4),
            "p@10": round(m["P_10"], 4),
            "p50_ms": round(outcome.report.latency_p50_ms, 2),
            "p95_ms": round(outcome.report.latency_p95_ms, 2),
            "p50_no_embed_ms": round(outcome.latency_no_embed_p50_ms, 2),
            "p95_no_embed_ms": round(outcome.latency_no_embed_p95_ms, 2),
        }
        print(mode, json.dumps(results[mode]), flush=True)
    out["retrieval"] = results
    out["latency_k10"] = latency_k10(args.home, dataset, args.modes.split(","))
    print(json.dumps(out["latency_k10"], indent=2), flush=True)
    out["settings"] = {
        "retrieval": settings.retrieval.model_dump(),
        "ingestion": settings.ingestion.model_dump(),
    }
    (args.home / "bench-result.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    container.close()


if __name__ == "__main__":
    main()

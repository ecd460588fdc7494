"""Retrieval evaluation on a BEIR data set: index the corpus into its own collection (a re-run
skips unchanged documents, so the index is reused), run every query of the split through the
``HybridRetriever``, pool chunk hits to documents (a document scores its best chunk), score
with ``metrics.retrieval``, and write a TREC run file plus a JSON report."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ragkeel.evaluation.datasets.beir import BeirDataset
from ragkeel.evaluation.metrics.retrieval import DEFAULT_METRICS, evaluate
from ragkeel.evaluation.reports.retrieval_report import RetrievalReport, latency_percentiles
from ragkeel.evaluation.reports.trec import write_trec_run
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.ingestion.report import IngestReport
from ragkeel.retrieval.hybrid import HybridRetriever, Mode
from ragkeel.storage.filters import Filter

RUN_DEPTH = 100  # documents kept per query (Recall@100 needs 100)


@dataclass(frozen=True, slots=True)
class EvalOutcome:
    report: RetrievalReport
    run: dict[str, dict[str, float]]
    run_path: Path
    report_path: Path
    ingest: IngestReport | None
    latency_no_embed_p50_ms: float
    latency_no_embed_p95_ms: float


def collection_name(dataset: BeirDataset) -> str:
    return f"beir-{dataset.name}"


def index_corpus(dataset: BeirDataset, pipeline: IngestionPipeline) -> IngestReport:
    return pipeline.ingest([str(dataset.corpus_path)], collection_name(dataset), prune=True)


def run_queries(
    dataset: BeirDataset,
    retriever: HybridRetriever,
    mode: Mode,
    *,
    depth: int = RUN_DEPTH,
    on_query: Callable[[int], None] | None = None,
) -> tuple[dict[str, dict[str, float]], list[float], list[float]]:
    """Returns the run, total latencies and latencies without query embedding (ms)."""
    flt = Filter(collection=collection_name(dataset))
    run: dict[str, dict[str, float]] = {}
    total_ms: list[float] = []
    no_embed_ms: list[float] = []
    for i, qid in enumerate(sorted(dataset.qrels)):
        t0 = time.perf_counter()
        result = retriever.search(dataset.queries[qid], depth * 2, mode=mode, flt=flt)
        elapsed = (time.perf_counter() - t0) * 1000
        total_ms.append(elapsed)
        no_embed_ms.append(elapsed - result.timings_ms.get("embed_ms", 0.0))
        docs: dict[str, float] = {}
        for hit in result.hits:
            doc = hit.chunk.document_id
            if doc not in docs:  # hits are in score order: first chunk is the best one
                docs[doc] = hit.score
            if len(docs) >= depth:
                break
        run[qid] = docs
        if on_query:
            on_query(i + 1)
    return run, total_ms, no_embed_ms


def evaluate_beir(
    dataset: BeirDataset,
    pipeline: IngestionPipeline,
    retriever: HybridRetriever,
    mode: Mode,
    out_dir: Path,
    *,
    k: int = 10,
    settings_snapshot: dict[str, object] | None = None,
    reindex: bool = True,
    on_query: Callable[[int], None] | None = None,
) -> EvalOutcome:
    ingest = index_corpus(dataset, pipeline) if reindex else None
    run, total_ms, no_embed_ms = run_queries(dataset, retriever, mode, on_query=on_query)
    metrics = tuple(dict.fromkeys((*DEFAULT_METRICS, f"ndcg_cut_{k}", f"recall_{k}")))
    evaluation = evaluate(dataset.qrels, run, metrics)
    p50, p95 = latency_percentiles(total_ms)
    q50, q95 = latency_percentiles(no_embed_ms)
    report = RetrievalReport(
        dataset=dataset.name,
        split=dataset.split,
        mode=mode,
        k=k,
        n_queries=evaluation.n_queries,
        metrics=evaluation.means,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        settings=dict(settings_snapshot or {}),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{dataset.name}-{dataset.split}-{mode}"
    run_path, report_path = out_dir / f"{stem}.trec", out_dir / f"{stem}.json"
    write_trec_run(run_path, run, tag=f"ragkeel-{mode}")
    report.write_json(report_path)
    return EvalOutcome(report, run, run_path, report_path, ingest, q50, q95)

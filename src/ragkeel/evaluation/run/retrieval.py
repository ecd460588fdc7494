"""Retrieval evaluation on a BEIR data set (``ragkeel eval retrieval --beir DIR``): index the
corpus into its own collection (a re-run skips unchanged documents, so the index is reused), run
every query of the split through the ``HybridRetriever``, pool chunk hits to documents (a
document scores its best chunk), score with ``metrics.retrieval``, and write, per mode:

- ``<name>-<split>-<mode>.results.json``: the same kind of results file as ``eval run``
  (schema ``ragkeel.eval.results/1``, :mod:`~ragkeel.evaluation.reports.results`), so ``eval
  compare`` and ``eval gate`` work on it. One retrieval-only row per query (no answer, no
  error, no tokens, no cost) with the metric keys of an ``eval run`` row: the retrieval
  metrics at K (``ndcg@K``, ``recall@K``, ``mrr@K``, ``p@K``, ``hit@K``, computed as ``eval
  run`` computes them, :func:`~ragkeel.evaluation.run.scoring.scores_at_k`) and the answer
  metrics and ``judge`` as ``null``, *not applicable*, so aggregates hold retrieval metrics
  only and a gate config that names answer metrics reports them ``n/a``. Each row keeps the
  best chunk of each of the first K documents and the search's latency per stage. The data set
  is named, tagged and checksummed as :func:`~ragkeel.evaluation.datasets.loaders.load_beir_cases`
  does (``<name>-<split>``, tag ``beir``); an ``eval run`` config names its data sets itself,
  so its rows pair with these when it names the split the same.
- ``<name>-<split>-<mode>.trec``: the TREC run (100 documents a query). A document scores its
  best chunk's fused score, or, when the search was reranked (``retrieval.rerank``, issue 15),
  its rank (``hits - position``): trec_eval orders by score, and the reranker's order is not
  the fused scores'.
- ``<name>-<split>-<mode>.json``: the retrieval report (trec_eval means, latency percentiles).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ragkeel.evaluation.datasets.beir import BeirDataset
from ragkeel.evaluation.datasets.loaders import beir_dataset_name, beir_sha256
from ragkeel.evaluation.metrics.answers import SCORE_KEYS
from ragkeel.evaluation.metrics.retrieval import DEFAULT_METRICS, evaluate
from ragkeel.evaluation.reports.results import (
    SCHEMA,
    EvalResults,
    Row,
    aggregate,
    dataset_info,
    git_commit,
    ingest_summary,
    write_results,
)
from ragkeel.evaluation.reports.retrieval_report import RetrievalReport, latency_percentiles
from ragkeel.evaluation.reports.trec import write_trec_run
from ragkeel.evaluation.run.scoring import RETRIEVED_TEXT_CHARS, scores_at_k
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.ingestion.report import IngestReport
from ragkeel.observability import names
from ragkeel.retrieval.hybrid import HybridRetriever, Mode
from ragkeel.storage.filters import Filter
from ragkeel.types import SearchHit

RUN_DEPTH = 100  # documents kept per query (Recall@100 needs 100)
BEIR_TAG = "beir"  # the tag eval run gives BEIR cases (datasets/loaders.load_beir_cases)


@dataclass(frozen=True, slots=True)
class EvalOutcome:
    report: RetrievalReport
    run: dict[str, dict[str, float]]
    run_path: Path
    report_path: Path
    ingest: IngestReport | None
    latency_no_embed_p50_ms: float
    latency_no_embed_p95_ms: float
    results: EvalResults
    results_path: Path


@dataclass(frozen=True, slots=True)
class _QueryRun:
    """One query's search: its documents (id -> best chunk score, best first), the best chunk
    of each, and its latencies (ms)."""

    docs: dict[str, float]
    best_hits: list[SearchHit]
    latency_ms: dict[str, float]
    no_embed_ms: float


def collection_name(dataset: BeirDataset) -> str:
    return f"beir-{dataset.name}"


def index_corpus(dataset: BeirDataset, pipeline: IngestionPipeline) -> IngestReport:
    return pipeline.ingest([str(dataset.corpus_path)], collection_name(dataset), prune=True)


def _search_all(
    dataset: BeirDataset,
    retriever: HybridRetriever,
    mode: Mode,
    *,
    depth: int,
    on_query: Callable[[int], None] | None,
) -> dict[str, _QueryRun]:
    """Every query of the split (ids sorted) searched once."""
    flt = Filter(collection=collection_name(dataset))
    embed_key = names.SEARCH_TIMINGS[names.STAGE_EMBED]
    out: dict[str, _QueryRun] = {}
    for i, qid in enumerate(sorted(dataset.qrels)):
        t0 = time.perf_counter()
        result = retriever.search(dataset.queries[qid], depth * 2, mode=mode, flt=flt)
        elapsed = (time.perf_counter() - t0) * 1000
        docs: dict[str, float] = {}
        best: list[SearchHit] = []
        # reranked hits (issue 15) are in the reranker's order, not their fused scores': the
        # run scores them by rank, so the TREC run and its metrics keep that order
        by_rank = result.rerank is not None and result.rerank.decision == "applied"
        for position, hit in enumerate(result.hits):
            doc = hit.chunk.document_id
            if doc not in docs:  # hits are in rank order: first chunk is the best one
                docs[doc] = float(len(result.hits) - position) if by_rank else hit.score
                best.append(hit)
            if len(docs) >= depth:
                break
        stages = {
            stage: float(result.timings_ms[key])
            for stage, key in names.SEARCH_TIMINGS.items()
            if stage != names.STAGE_TOTAL and key in result.timings_ms
        }
        latency = {**stages, names.STAGE_RETRIEVE: elapsed, names.STAGE_TOTAL: elapsed}
        out[qid] = _QueryRun(docs, best, latency, elapsed - result.timings_ms.get(embed_key, 0.0))
        if on_query:
            on_query(i + 1)
    return out


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
    started = time.monotonic()
    ingest = index_corpus(dataset, pipeline) if reindex else None
    queries = _search_all(dataset, retriever, mode, depth=RUN_DEPTH, on_query=on_query)
    run = {qid: q.docs for qid, q in queries.items()}
    metrics = tuple(dict.fromkeys((*DEFAULT_METRICS, f"ndcg_cut_{k}", f"recall_{k}")))
    evaluation = evaluate(dataset.qrels, run, metrics)
    p50, p95 = latency_percentiles([q.latency_ms[names.STAGE_TOTAL] for q in queries.values()])
    q50, q95 = latency_percentiles([q.no_embed_ms for q in queries.values()])
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
    results_path = out_dir / f"{stem}.results.json"
    write_trec_run(run_path, run, tag=f"ragkeel-{mode}")
    report.write_json(report_path)
    results = _results(dataset, queries, mode, k, stem, settings_snapshot, ingest, started)
    write_results(results_path, results)
    return EvalOutcome(report, run, run_path, report_path, ingest, q50, q95, results, results_path)


def _results(
    dataset: BeirDataset,
    queries: dict[str, _QueryRun],
    mode: Mode,
    k: int,
    name: str,
    settings_snapshot: dict[str, object] | None,
    ingest: IngestReport | None,
    started: float,
) -> EvalResults:
    """The run as ``results.json`` (see the module docstring)."""
    set_name = beir_dataset_name(dataset)
    rows = [_row(set_name, qid, dataset, q, k) for qid, q in queries.items()]
    ingested = {set_name: ingest_summary(ingest)} if ingest is not None else {}
    return {
        "schema": SCHEMA,
        "name": name,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": git_commit(),
        "config": {
            "command": "eval retrieval",
            "beir": str(dataset.corpus_path.parent),
            "split": dataset.split,
            "mode": mode,
            "k": k,
            "depth": RUN_DEPTH,
            "collection": collection_name(dataset),
        },
        "settings": dict(settings_snapshot or {}),
        "datasets": [
            dataset_info(
                set_name, "beir", dataset.corpus_path.parent, beir_sha256(dataset), len(rows)
            )
        ],
        "rows": rows,
        "aggregates": aggregate(rows),
        "run": {
            "planned_cases": len(dataset.qrels),
            "ran_cases": len(rows),
            "cut": None,
            "elapsed_s": round(time.monotonic() - started, 3),
            "ingest": ingested,
        },
    }


def _row(set_name: str, qid: str, dataset: BeirDataset, query: _QueryRun, k: int) -> Row:
    """A retrieval-only row: searched, not answered (``answer`` and ``error`` are None)."""
    return {
        "dataset": set_name,
        "id": qid,
        "question": dataset.queries[qid],
        "tags": [BEIR_TAG],
        "expect": "answer",
        "metrics": {  # the keys of an eval run row; the answer metrics are not applicable
            **scores_at_k(dataset.qrels[qid], query.docs, k),
            **dict.fromkeys(SCORE_KEYS),
            "judge": None,
        },
        "judge": None,
        "answer": None,
        "retrieved": [
            {
                "rank": rank,
                "document_id": hit.chunk.document_id,
                "chunk_id": hit.chunk.id,
                "source": hit.chunk.source,
                "score": float(hit.score),
                "text": hit.chunk.text[:RETRIEVED_TEXT_CHARS],
            }
            for rank, hit in enumerate(query.best_hits[:k], start=1)
        ],
        "latency_ms": query.latency_ms,
        "tokens": {"prompt": 0, "completion": 0},
        "cost": 0.0,
        "trace_id": None,
        "error": None,
        "references": [],
    }

"""One evaluated case as a ``results.json`` row: retrieval metrics from the answer's hits, the
answer metrics, the judge verdict, and the answer, context, latency, tokens and cost behind
them.

Retrieval metrics (``ndcg@K``, ``recall@K``, ``mrr@K``, ``p@K``, ``hit@K``) use the trec_eval
functions of :mod:`~ragkeel.evaluation.metrics.retrieval` on the hits pooled to documents: a
document scores its best chunk. Relevance is the case's graded ``qrels`` (BEIR), else its
``relevant_doc_ids`` (grade 1 each), else, for sets that name source files (csv_qa), the corpus
files whose *name* matches one of ``relevant_source_globs`` — then hits pool to file names. A
case with no relevant document has no retrieval metrics (None). A case that failed to run
scores 0 on every metric that applies to it (:func:`failed_metrics`), so a crash never raises a
mean.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Mapping, Sequence
from fnmatch import fnmatch
from functools import lru_cache
from pathlib import Path

from ragkeel.errors import RagkeelError
from ragkeel.evaluation.cases import EvalCase, EvalDataset
from ragkeel.evaluation.metrics.answers import SCORE_KEYS
from ragkeel.evaluation.metrics.judges import LLMJudge, answer_sources
from ragkeel.evaluation.metrics.retrieval import mrr_at_k, ndcg_at_k, precision_at_k, recall_at_k
from ragkeel.evaluation.reports.results import JudgeRow, Row
from ragkeel.gateway.base import ChatModel
from ragkeel.generation.answer import Answer
from ragkeel.generation.tracing import INTERNAL_ERROR
from ragkeel.observability import names
from ragkeel.types import SearchHit

RETRIEVED_TEXT_CHARS = 300  # context kept per retrieved chunk in a row
Metrics = dict[str, float | None]
JudgeFn = Callable[[EvalCase, Answer], JudgeRow | None]


def retrieval_names(k: int) -> tuple[str, ...]:
    return (f"ndcg@{k}", f"recall@{k}", f"mrr@{k}", f"p@{k}", f"hit@{k}")


def retrieval_scores(
    dataset: EvalDataset, case: EvalCase, hits: Sequence[SearchHit], k: int
) -> Metrics:
    """The retrieval metrics at ``k`` of ``hits`` for ``case`` (see the module docstring)."""
    by_file = not case.qrels and not case.relevant_doc_ids and bool(case.relevant_source_globs)
    relevance = _file_relevance(dataset, case) if by_file else _doc_relevance(case)
    run: dict[str, float] = {}
    for hit in hits:  # in rank order: the first chunk of a document is its best
        key = Path(hit.chunk.source).name if by_file else hit.chunk.document_id
        run.setdefault(key, hit.score)
    return scores_at_k(relevance, run, k)


def scores_at_k(relevance: Mapping[str, int], run: Mapping[str, float], k: int) -> Metrics:
    """The row metrics ``ndcg@k``, ``recall@k``, ``mrr@k``, ``p@k``, ``hit@k`` of one query's
    document ``run`` (id -> score) against its graded ``relevance``; all None when nothing is
    relevant. The BEIR retrieval run scores its queries with this too."""
    names = retrieval_names(k)
    if not any(grade >= 1 for grade in relevance.values()):
        return dict.fromkeys(names)
    mrr = mrr_at_k(relevance, run, k)
    values = (
        ndcg_at_k(relevance, run, k),
        recall_at_k(relevance, run, k),
        mrr,
        precision_at_k(relevance, run, k),
        1.0 if mrr > 0 else 0.0,
    )
    return dict(zip(names, values, strict=True))


def _doc_relevance(case: EvalCase) -> Mapping[str, int]:
    return case.qrels or dict.fromkeys(case.relevant_doc_ids, 1)


def _file_relevance(dataset: EvalDataset, case: EvalCase) -> Mapping[str, int]:
    names = _corpus_file_names(dataset.corpus.paths if dataset.corpus else ())
    globs = case.relevant_source_globs
    return {name: 1 for name in names if any(fnmatch(name, g) for g in globs)}


@lru_cache(maxsize=64)
def _corpus_file_names(paths: tuple[str, ...]) -> frozenset[str]:
    """File names under the corpus paths (files, folders searched recursively, or globs)."""
    names: set[str] = set()
    for raw in paths:
        path = Path(raw)
        found = path.rglob("*") if path.is_dir() else map(Path, glob.glob(raw, recursive=True))
        names.update(p.name for p in found if p.is_file())
    return frozenset(names)


def failed_metrics(dataset: EvalDataset, case: EvalCase, k: int) -> Metrics:
    """The metrics of a case that failed to run: 0 wherever a metric applies to the case."""
    metrics = retrieval_scores(dataset, case, (), k)
    answer: Metrics = dict.fromkeys(SCORE_KEYS)
    if case.expect == "answer" and case.reference_answers:
        answer.update(em=0.0, f1=0.0, contains=0.0)
    if case.expect == "answer" and case.output_schema is not None:
        answer["format_ok"] = 0.0
    answer.update(answered=0.0, correct_abstention=0.0)
    return {**metrics, **answer, "judge": None}


def make_judge(model: ChatModel, repeats: int, threshold: float) -> JudgeFn:
    """The judge as a function of (case, answer), given the sources numbered as the answer
    cites them. A refusal is not judged (None): ``correct_abstention`` scores it."""
    judge = LLMJudge(model, repeats=repeats, threshold=threshold)

    def run(case: EvalCase, answer: Answer) -> JudgeRow | None:
        if answer.mode == "cannot_answer":
            return None
        verdict = judge.judge(
            case.question, answer.text, answer_sources(answer), case.reference_answers
        )
        return {
            "scores": list(verdict.scores),
            "mean": verdict.mean,
            "spread": verdict.spread,
            "verdict": verdict.verdict,
            "prompt_version": verdict.prompt_version,
        }

    return run


def row_from_answer(
    dataset: EvalDataset,
    case: EvalCase,
    answer: Answer,
    metrics: Metrics,
    verdict: JudgeRow | None,
    trace_id: str | None,
) -> Row:
    row = _base_row(dataset, case, metrics, trace_id)
    if case.history:  # a follow-up: what it was asked as, once made standalone (issue 15)
        row["asked"] = answer.question
    row["metrics"]["judge"] = verdict["mean"] if verdict else None
    row["judge"] = verdict
    row["answer"] = {
        "text": answer.text,
        "mode": answer.mode,
        "degraded": answer.degraded,
        "degraded_reason": answer.degraded_reason,
        "model": answer.model,
        "grounded": answer.grounded,
        "citations": [
            {
                "number": c.number,
                "document_id": c.document_id,
                "source": c.source,
                "snippet": c.snippet,
            }
            for c in answer.citations
        ],
    }
    row["retrieved"] = [
        {
            "rank": rank,
            "document_id": h.chunk.document_id,
            "chunk_id": h.chunk.id,
            "source": h.chunk.source,
            "score": float(h.score),
            "text": h.chunk.text[:RETRIEVED_TEXT_CHARS],
        }
        for rank, h in enumerate(answer.hits, start=1)
    ]
    row["latency_ms"] = {stage: float(ms) for stage, ms in answer.latency_ms.items()}
    row["tokens"] = {
        "prompt": answer.usage.prompt_tokens,
        "completion": answer.usage.completion_tokens,
    }
    row["cost"] = float(answer.cost)
    return row


def row_from_error(
    dataset: EvalDataset,
    case: EvalCase,
    error: BaseException,
    metrics: Metrics,
    latency_ms: float,
    trace_id: str | None,
) -> Row:
    row = _base_row(dataset, case, metrics, trace_id)
    code = error.code if isinstance(error, RagkeelError) else INTERNAL_ERROR
    row["error"] = {"code": code, "message": str(error) or type(error).__name__}
    row["latency_ms"] = {names.STAGE_TOTAL: round(latency_ms, 3)}
    return row


def _base_row(dataset: EvalDataset, case: EvalCase, metrics: Metrics, trace_id: str | None) -> Row:
    row: Row = {
        "dataset": dataset.name,
        "id": case.id,
        "question": case.question,
        "tags": list(case.tags),
        "expect": case.expect,
        "metrics": {**metrics, "judge": metrics.get("judge")},
        "judge": None,
        "answer": None,
        "retrieved": [],
        "latency_ms": {},
        "tokens": {"prompt": 0, "completion": 0},
        "cost": 0.0,
        "trace_id": trace_id,
        "error": None,
        "references": list(case.reference_answers),
    }
    if case.history:
        row["history"] = list(case.history)
    return row

"""The evaluation run behind ``ragkeel eval run``: load the data sets of an :class:`EvalConfig`,
ingest each corpus into its own collection, ask every case, score it, write ``results.json``.

- **Ingest.** Each data set's corpus goes into the collection ``eval-<name>`` of the run's home,
  pruned to exactly that corpus; unchanged documents are skipped, so a second run reuses the
  index. A BEIR set with ``corpus_sample: N`` is restricted to the judged documents of its
  sampled queries plus N seeded distractors (written under ``<home>/eval-data``).
- **Ask.** Cases run on a ``ThreadPoolExecutor(concurrency)``; the rows come back in config
  order (data set, then case) whatever the scheduling. ``limits.max_cases`` keeps the first N
  cases; past ``limits.max_seconds`` (wall clock from the start, ingest included) no case is
  started. A case that raises becomes a row with ``error`` and a trace; the run goes on.
- **Score.** Per row: retrieval metrics at K on the answer's hits pooled to documents (a document
  scores its best chunk; csv_qa pools to source file names matched by the case's globs), so
  they describe the context the answer was built from (``generation.k`` hits, not a deeper
  run); the answer metrics of :func:`score_answer`; the judge's mean when enabled.

The components come from ``build(settings)``, called once per run with the run's settings
(``EvalConfig.build_settings``: the config embeds them); ``Container`` in practice (evaluation
sits below the container in the layer order, so it is passed in, not imported). The harness
reads only the run's home and the masked snapshot from those settings; everything else it takes
from the built stack.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from ragkeel.errors import ConfigError, RagkeelError
from ragkeel.evaluation.cases import EvalCase, EvalDataset
from ragkeel.evaluation.metrics.answers import score_answer
from ragkeel.evaluation.reports.results import (
    EvalResults,
    Row,
    aggregate,
    dataset_info,
    git_commit,
    ingest_summary,
    write_results,
)
from ragkeel.evaluation.run.config import EvalConfig, config_snapshot
from ragkeel.evaluation.run.loading import load_dataset
from ragkeel.evaluation.run.scoring import (
    JudgeFn,
    failed_metrics,
    make_judge,
    retrieval_scores,
    row_from_answer,
    row_from_error,
)
from ragkeel.gateway.base import ChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.condense import Turn
from ragkeel.generation.tracing import trace_from_answer, trace_from_error
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.observability import genai, names, tracing
from ragkeel.observability.context import request_context
from ragkeel.observability.trace import Trace
from ragkeel.observability.trace_store import TraceStore
from ragkeel.observability.tracing import Tracer
from ragkeel.settings import Settings

ROUTE_EVAL = names.ROUTE_EVAL_RUN  # trace route of every answer an evaluation asks for
RESULTS_FILE = "results.json"
Progress = Callable[[str, int, int], None]  # (phase, done, total); called on the caller's thread


class EvalStack(Protocol):
    """What the harness needs from the wiring (``ragkeel.container.Container`` has it): the
    components and the plain values it asks for, not the settings (the container reads them)."""

    @property
    def keep_prompt_text(self) -> bool: ...
    @property
    def pipeline(self) -> IngestionPipeline: ...
    @property
    def answerer(self) -> Answerer: ...
    @property
    def traces(self) -> TraceStore: ...
    @property
    def tracer(self) -> Tracer: ...
    @property
    def chat_model(self) -> ChatModel | None: ...
    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Job:
    dataset: EvalDataset
    case: EvalCase


def run_eval(
    config: EvalConfig,
    *,
    out_dir: Path,
    build: Callable[[Settings], EvalStack],
    progress: Progress | None = None,
    limit: int | None = None,
) -> EvalResults:
    """Run ``config`` and write ``out_dir/results.json``; ``limit`` caps the cases per data set
    (a quick look at a big config). Returns what was written."""
    started = time.monotonic()
    deadline = started + (config.limits.max_seconds or float("inf"))
    settings = config.build_settings()
    report = progress or _quiet
    work_dir = settings.home / "eval-data"
    datasets = [load_dataset(d, work_dir, limit=limit) for d in config.datasets]
    jobs = [_Job(ds, case) for ds in datasets for case in ds.cases]
    planned = len(jobs)
    if config.limits.max_cases is not None:
        jobs = jobs[: config.limits.max_cases]
    stack = build(settings)
    try:
        judge = _judge(config, stack)
        asked = {j.dataset.name for j in jobs}
        asked |= {d.ask_in for d in config.datasets if d.name in asked and d.ask_in}
        ingest = {ds.name: _ingest(stack, ds, report) for ds in datasets if ds.name in asked}
        rows = _ask_all(stack, jobs, config, judge, deadline, report)
    finally:
        stack.close()
    ran = [r for r in rows if r is not None]
    cut = _cut_reason(planned, len(jobs), len(ran))
    results: EvalResults = {
        "schema": "ragkeel.eval.results/1",
        "name": config.name,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": git_commit(),
        "config": config_snapshot(config),
        "settings": settings.masked(),
        "datasets": [
            dataset_info(d.name, d.kind, d.source, d.sha256, len(d.cases)) for d in datasets
        ],
        "rows": ran,
        "aggregates": aggregate(ran),
        "run": {
            "planned_cases": planned,
            "ran_cases": len(ran),
            "cut": cut,
            "elapsed_s": round(time.monotonic() - started, 3),
            "ingest": ingest,
        },
    }
    write_results(out_dir / RESULTS_FILE, results)
    return results


def _quiet(phase: str, done: int, total: int) -> None:
    """The default progress callback: nothing."""


def _cut_reason(planned: int, admitted: int, ran: int) -> str | None:
    if ran < admitted:
        return "max_seconds"
    return "max_cases" if admitted < planned else None


def _judge(config: EvalConfig, stack: EvalStack) -> JudgeFn | None:
    if not config.judge.enabled:
        return None
    model = stack.chat_model
    if model is None:
        raise ConfigError(
            "judge.enabled needs a chat model, but generation.provider is 'none'",
            hint="set settings.generation.provider (local or openai) or judge.enabled: false",
        )
    return make_judge(model, config.judge.repeats, config.judge.threshold)


def _ingest(stack: EvalStack, dataset: EvalDataset, report: Progress) -> dict[str, object]:
    if dataset.corpus is None or not dataset.corpus.paths:  # nothing of its own (ask_in)
        return {}
    report(f"ingest {dataset.name}", 0, 1)
    done = stack.pipeline.ingest(list(dataset.corpus.paths), dataset.corpus.collection, prune=True)
    report(f"ingest {dataset.name}", 1, 1)
    return ingest_summary(done)


def _ask_all(
    stack: EvalStack,
    jobs: Sequence[_Job],
    config: EvalConfig,
    judge: JudgeFn | None,
    deadline: float,
    report: Progress,
) -> list[Row | None]:
    """Every job's row in job order; ``None`` for a job not started (past the deadline)."""
    answerer, traces = stack.answerer, stack.traces  # built here, not racing in the workers
    keep_prompt, tracer = stack.keep_prompt_text, stack.tracer
    stop = threading.Event()

    def work(job: _Job) -> Row | None:
        if stop.is_set() or time.monotonic() > deadline:
            stop.set()
            return None
        return _run_case(answerer, traces, job, config.k, judge, keep_prompt, tracer)

    rows: list[Row | None] = [None] * len(jobs)
    report("ask", 0, len(jobs))
    with ThreadPoolExecutor(config.concurrency, thread_name_prefix="ragkeel-eval") as pool:
        futures = {pool.submit(work, job): i for i, job in enumerate(jobs)}
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                rows[futures[future]] = future.result()
                report("ask", done, len(jobs))
        except BaseException:
            stop.set()  # e.g. Ctrl-C: let the running cases finish, start no more
            raise
    return rows


def _record(traces: TraceStore, trace: Trace) -> str | None:
    """The case's trace on its span (when traced) and in the store."""
    genai.annotate_request(trace)
    return traces.record(trace)


def _run_case(
    answerer: Answerer,
    traces: TraceStore,
    job: _Job,
    k: int,
    judge: JudgeFn | None,
    keep_prompt: bool,
    tracer: Tracer,
) -> Row:
    """One case as a row; never raises (a failure becomes the row's ``error``)."""
    attrs = {**genai.root_attributes(ROUTE_EVAL), names.EVAL_CASE_ID: job.case.id}
    with (
        request_context(ROUTE_EVAL),  # the case's log lines carry its trace's id
        tracing.request(tracer, names.SPAN_EVAL_CASE, attrs),  # its root span, when traced
    ):
        return _run_case_in_context(answerer, traces, job, k, judge, keep_prompt)


def _run_case_in_context(
    answerer: Answerer,
    traces: TraceStore,
    job: _Job,
    k: int,
    judge: JudgeFn | None,
    keep_prompt: bool,
) -> Row:
    case, dataset = job.case, job.dataset
    collection = dataset.corpus.collection if dataset.corpus else None
    start = time.perf_counter()
    try:
        answer = answerer.answer(  # measured afresh: never an earlier run's cached answer
            case.question,
            collection=collection,
            output_schema=case.output_schema,
            cache="off",
            history=tuple(Turn("user", q) for q in case.history),  # a follow-up (issue 15)
        )
    except Exception as exc:
        ms = (time.perf_counter() - start) * 1000
        trace_id = _record(
            traces, trace_from_error(case.question, exc, route=ROUTE_EVAL, latency_ms=ms)
        )
        return row_from_error(dataset, case, exc, failed_metrics(dataset, case, k), ms, trace_id)
    trace_id = _record(
        traces, trace_from_answer(answer, route=ROUTE_EVAL, keep_prompt_text=keep_prompt)
    )
    try:
        metrics = {**retrieval_scores(dataset, case, answer.hits, k), **score_answer(case, answer)}
        verdict = judge(case, answer) if judge is not None else None
    except (RagkeelError, ValueError) as exc:  # scoring failed: the row says so, the run goes on
        ms = float(answer.latency_ms.get(names.STAGE_TOTAL, 0.0))
        return row_from_error(dataset, case, exc, failed_metrics(dataset, case, k), ms, trace_id)
    return row_from_answer(dataset, case, answer, metrics, verdict, trace_id)

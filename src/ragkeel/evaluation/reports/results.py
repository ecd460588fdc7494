"""``results.json`` (schema ``ragkeel.eval.results/1``): what ``eval run`` and ``eval retrieval``
write and ``eval compare`` / ``eval gate`` read.

One row per case that ran, keyed by (``dataset``, ``id``), then ``aggregates`` computed from the
rows by :func:`aggregate`. Every metric is "higher is better" in [0, 1]; ``None`` (JSON
``null``) means *not applicable* (a SQuAD question has no ``format_ok``, a case without
relevance has no ``ndcg@10``) and is left out of every mean, never counted as 0. A case that
failed to run has an ``error`` and scores 0 on the metrics that apply to it (see
``run/scoring.failed_metrics``), so a crash cannot raise a mean.

A *retrieval-only* row (``eval retrieval --beir``: the question was searched, not answered) has
no ``answer`` and no ``error``, retrieval metrics only, no tokens and no cost; it is left out of
the abstention figures (it neither answered nor refused).

Beyond the contract, ``run`` says how the run went (cases planned and run, whether a limit cut
it, ingest summaries); readers ignore keys they do not know. The file is written atomically.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NotRequired

import numpy as np
from pydantic import TypeAdapter, ValidationError
from typing_extensions import TypedDict

from ragkeel.errors import DatasetError
from ragkeel.ingestion.report import IngestReport
from ragkeel.observability import names

SCHEMA = "ragkeel.eval.results/1"
OPS_STAGES = names.OPS_STAGES  # latency percentiles


class CitationRow(TypedDict):
    number: int
    document_id: str
    source: str
    snippet: str


class AnswerRow(TypedDict):
    text: str
    mode: Literal["generative", "extractive", "cannot_answer"]
    degraded: bool
    degraded_reason: str | None
    model: str | None
    grounded: bool
    citations: list[CitationRow]


class RetrievedRow(TypedDict):
    rank: int
    document_id: str
    chunk_id: str
    source: str
    score: float
    text: str


class JudgeRow(TypedDict):
    scores: list[float]  # the judge replies that parsed
    mean: float | None  # None when no reply parsed (verdict "invalid")
    spread: float | None
    verdict: Literal["pass", "fail", "unstable", "invalid"]
    prompt_version: str


class ErrorRow(TypedDict):
    code: str
    message: str


class TokensRow(TypedDict):
    prompt: int
    completion: int


class Row(TypedDict):
    dataset: str
    id: str
    question: str
    tags: list[str]
    expect: Literal["answer", "cannot_answer"]
    metrics: dict[str, float | None]
    judge: JudgeRow | None
    answer: AnswerRow | None  # None: failed before it had an answer, or retrieval-only
    retrieved: list[RetrievedRow]
    latency_ms: dict[str, float]
    tokens: TokensRow
    cost: float
    trace_id: str | None
    error: ErrorRow | None
    references: NotRequired[list[str]]  # beyond the contract: reference answers, for reports
    # a follow-up (issue 15): its earlier questions, and the standalone question it was asked as
    history: NotRequired[list[str]]
    asked: NotRequired[str]


class DatasetInfo(TypedDict):
    name: str
    kind: str
    source: str
    sha256: str
    n_cases: int


class MetricMean(TypedDict):
    mean: float
    n: int


class Abstention(TypedDict):
    answered_when_answerable: float | None
    refused_when_unanswerable: float | None
    cannot_answer_precision: float | None
    n_answerable: int
    n_unanswerable: int
    n_refused: int


class Percentiles(TypedDict):
    p50: float
    p95: float
    max: float


class Ops(TypedDict):
    latency_ms: dict[str, Percentiles]
    tokens_per_query: dict[str, float]
    cost_per_query: float
    cost_total: float
    degraded_share: float
    error_share: float
    n: int


class Aggregates(TypedDict):
    overall: dict[str, MetricMean]
    by_dataset: dict[str, dict[str, MetricMean]]
    by_tag: dict[str, dict[str, MetricMean]]
    abstention: Abstention
    ops: Ops


class RunInfo(TypedDict):
    planned_cases: int
    ran_cases: int
    cut: str | None  # "max_cases" / "max_seconds" when a limit stopped the run early
    elapsed_s: float
    ingest: dict[str, dict[str, Any]]


class EvalResults(TypedDict):
    schema: str
    name: str
    created_at: str
    git_commit: str | None
    config: dict[str, Any]
    settings: dict[str, Any]
    datasets: list[DatasetInfo]
    rows: list[Row]
    aggregates: Aggregates
    run: NotRequired[RunInfo]


_ADAPTER: TypeAdapter[EvalResults] = TypeAdapter(EvalResults)


# -- aggregation -------------------------------------------------------------------------------
def metric_means(rows: Iterable[Row]) -> dict[str, MetricMean]:
    """Mean and count of every metric over the rows where it is not None (sorted by name)."""
    values: dict[str, list[float]] = {}
    for row in rows:
        for name, value in row["metrics"].items():
            if value is not None:
                values.setdefault(name, []).append(value)
    return {
        name: {"mean": math.fsum(vs) / len(vs), "n": len(vs)} for name, vs in sorted(values.items())
    }


def abstention(rows: Sequence[Row]) -> Abstention:
    """Answered when answerable, refused when unanswerable, and how often a refusal was right.
    A failed case counts as neither answered nor refused; a retrieval-only row is not counted."""
    asked = [r for r in rows if not _retrieval_only(r)]
    answerable = [r for r in asked if r["expect"] == "answer"]
    unanswerable = [r for r in asked if r["expect"] == "cannot_answer"]
    refused = [r for r in rows if _refused(r)]
    answered = sum(1 for r in answerable if r["answer"] is not None and not _refused(r))
    return {
        "answered_when_answerable": _share(answered, len(answerable)),
        "refused_when_unanswerable": _share(sum(map(_refused, unanswerable)), len(unanswerable)),
        "cannot_answer_precision": _share(
            sum(1 for r in refused if r["expect"] == "cannot_answer"), len(refused)
        ),
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "n_refused": len(refused),
    }


def ops(rows: Sequence[Row]) -> Ops:
    """Latency percentiles per stage (rows that ran), tokens and cost per query, shares."""
    ran = [r for r in rows if r["error"] is None]
    latency: dict[str, Percentiles] = {}
    for stage in OPS_STAGES:
        values = [r["latency_ms"][stage] for r in ran if stage in r["latency_ms"]]
        if values:
            p50, p95, top = np.percentile(np.asarray(values, dtype=np.float64), [50, 95, 100])
            latency[stage] = {"p50": float(p50), "p95": float(p95), "max": float(top)}
    n = len(rows)
    cost_total = math.fsum(r["cost"] for r in rows)
    return {
        "latency_ms": latency,
        "tokens_per_query": {
            "prompt": _mean([r["tokens"]["prompt"] for r in rows]),
            "completion": _mean([r["tokens"]["completion"] for r in rows]),
        },
        "cost_per_query": cost_total / n if n else 0.0,
        "cost_total": cost_total,
        "degraded_share": _mean(
            [float(r["answer"] is not None and r["answer"]["degraded"]) for r in rows]
        ),
        "error_share": _mean([float(r["error"] is not None) for r in rows]),
        "n": n,
    }


def aggregate(rows: Sequence[Row]) -> Aggregates:
    """The ``aggregates`` block of ``results.json`` for ``rows``."""
    by_dataset: dict[str, list[Row]] = {}
    by_tag: dict[str, list[Row]] = {}
    for row in rows:
        by_dataset.setdefault(row["dataset"], []).append(row)
        for tag in row["tags"]:
            by_tag.setdefault(tag, []).append(row)
    return {
        "overall": metric_means(rows),
        "by_dataset": {name: metric_means(rs) for name, rs in by_dataset.items()},
        "by_tag": {tag: metric_means(rs) for tag, rs in sorted(by_tag.items())},
        "abstention": abstention(rows),
        "ops": ops(rows),
    }


def _retrieval_only(row: Row) -> bool:
    return row["answer"] is None and row["error"] is None


def _refused(row: Row) -> bool:
    return row["answer"] is not None and row["answer"]["mode"] == "cannot_answer"


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0


# -- files -------------------------------------------------------------------------------------
def write_results(path: Path, results: EvalResults) -> None:
    """Write ``results`` as JSON, atomically (temporary file, fsync, rename)."""
    text = json.dumps(results, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are shared artefacts
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_results(path: Path) -> EvalResults:
    """Read and validate a ``results.json``; :class:`DatasetError` naming the file and the first
    problems when it is missing, not JSON, of another schema, or malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(f"cannot read results file {path}: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"results file {path} is not valid JSON: {exc}") from exc
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema != SCHEMA:
        raise DatasetError(
            f"{path} is not an eval results file: schema is {schema!r}, expected {SCHEMA!r}",
            hint="pass the results.json written by `ragkeel eval run`",
        )
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:5]
        ]
        raise DatasetError(
            f"results file {path} is malformed: " + "; ".join(problems),
            hint="regenerate it with `ragkeel eval run`",
        ) from exc


def dataset_info(name: str, kind: str, source: Path, sha256: str, n_cases: int) -> DatasetInfo:
    return {"name": name, "kind": kind, "source": str(source), "sha256": sha256, "n_cases": n_cases}


def ingest_summary(done: IngestReport) -> dict[str, Any]:
    """What ``run.ingest`` records of one data set's ingest."""
    return {
        "collection": done.collection,
        "documents_written": done.documents_written,
        "documents_unchanged": done.documents_unchanged,
        "documents_deleted": done.documents_deleted,
        "failed_files": [f.path for f in done.failed],
        "elapsed_s": round(done.elapsed_seconds, 3),
    }


def git_commit(cwd: Path | None = None) -> str | None:
    """The short commit hash of the checkout at ``cwd`` (best effort: None outside a git
    repository or without git)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def rows_by_key(results: EvalResults) -> Mapping[tuple[str, str], Row]:
    """Rows keyed by (``dataset``, ``id``), the key comparisons pair rows by."""
    return {(r["dataset"], r["id"]): r for r in results["rows"]}

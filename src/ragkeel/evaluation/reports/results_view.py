"""A typed view of a ``results.json`` (schema ``ragkeel.eval.results/1``) holding what
comparisons and the gate need: data set checksums, per-row metrics keyed by ``(dataset, id)``,
the question and answer text (to show what changed) and ``aggregates.ops``.

Files are read and validated against the full contract by
:func:`ragkeel.evaluation.reports.results.read_results` (one reader of the contract, next to its
writer); :func:`parse_results` builds the view and still checks the few things it relies on
(schema tag, numeric metrics, unique keys), so an in-memory document that is wrong gives a
:class:`~ragkeel.errors.DatasetError` naming the problem rather than a ``KeyError`` deep inside
a comparison. Metric ``null`` means "not applicable" and stays ``None``, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragkeel.errors import DatasetError
from ragkeel.evaluation.reports.results import SCHEMA as RESULTS_SCHEMA
from ragkeel.evaluation.reports.results import read_results

RowKey = tuple[str, str]  # (dataset, id)


@dataclass(frozen=True, slots=True)
class ResultRow:
    dataset: str
    id: str
    question: str
    metrics: Mapping[str, float | None]
    answer: str  # the answer text, or "error CODE: message" when the case failed to run


@dataclass(frozen=True, slots=True)
class EvalResults:
    name: str
    source: str  # where it was read from (for messages)
    datasets: Mapping[str, str]  # data set name -> sha256 of its source
    rows: Mapping[RowKey, ResultRow]
    ops: Mapping[str, Any]  # aggregates.ops, as written
    raw: Mapping[str, Any]  # the whole document (for --update-baseline)


def load_results(path: Path) -> EvalResults:
    """Read, validate and view a ``results.json``; :class:`DatasetError` if it is not one."""
    return parse_results(read_results(path), source=str(path))


def parse_results(data: Any, *, source: str = "<memory>") -> EvalResults:
    """Build the typed view of an already-parsed results document."""
    if not isinstance(data, Mapping) or data.get("schema") != RESULTS_SCHEMA:
        found = data.get("schema") if isinstance(data, Mapping) else type(data).__name__
        raise DatasetError(
            f"{source}: not a results file of schema {RESULTS_SCHEMA!r} (found {found!r})",
            hint="pass a results.json written by `ragkeel eval run`",
        )
    try:
        datasets = {str(d["name"]): str(d["sha256"]) for d in data["datasets"]}
        rows: dict[RowKey, ResultRow] = {}
        for raw in data["rows"]:
            row = _row(raw)
            key = (row.dataset, row.id)
            if key in rows:
                raise ValueError(f"duplicate row {row.dataset}/{row.id}")
            rows[key] = row
        ops = (data.get("aggregates") or {}).get("ops") or {}
        if not isinstance(ops, Mapping):
            raise TypeError("aggregates.ops is not an object")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DatasetError(f"{source}: malformed results file: {exc!r}") from exc
    return EvalResults(str(data.get("name", "")), source, datasets, rows, ops, data)


def _row(raw: Mapping[str, Any]) -> ResultRow:
    metrics: dict[str, float | None] = {}
    for name, value in raw["metrics"].items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"metric {name!r} of row {raw['id']!r} is {value!r}, not a number")
        metrics[str(name)] = None if value is None else float(value)
    return ResultRow(
        dataset=str(raw["dataset"]),
        id=str(raw["id"]),
        question=str(raw.get("question", "")),
        metrics=metrics,
        answer=_answer_text(raw),
    )


def _answer_text(raw: Mapping[str, Any]) -> str:
    error = raw.get("error")
    if isinstance(error, Mapping):
        return f"error {error.get('code', '?')}: {error.get('message', '')}"
    answer = raw.get("answer")
    if isinstance(answer, Mapping):
        return str(answer.get("text", ""))
    return ""

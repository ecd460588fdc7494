"""The reading side of the ``results.json`` contract (schema ``ragkeel.eval.results/1``) as far
as comparisons and the gate need it: data set checksums, per-row metrics keyed by
``(dataset, id)``, the question and answer text (to show what changed) and ``aggregates.ops``.

The file is validated enough that a wrong, truncated or foreign file gives a
:class:`ResultsFileError` naming the problem rather than a ``KeyError`` deep inside a
comparison. Fields this view does not use are ignored, so the writer may add fields freely.
Metric values are numbers or ``null``; ``null`` means "not applicable" and stays ``None``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragkeel.errors import DatasetError

RESULTS_SCHEMA = "ragkeel.eval.results/1"

RowKey = tuple[str, str]  # (dataset, id)


class ResultsFileError(DatasetError):
    """A file given as evaluation results is unreadable or does not follow the contract."""

    code = "RESULTS_INVALID"


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
    """Read and check a ``results.json``; :class:`ResultsFileError` if it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsFileError(
            f"cannot read results file {path}: {exc}",
            hint="pass a results.json written by `ragkeel eval run`",
        ) from exc
    return parse_results(data, source=str(path))


def parse_results(data: Any, *, source: str = "<memory>") -> EvalResults:
    """Build the typed view of an already-parsed results document."""
    if not isinstance(data, Mapping) or data.get("schema") != RESULTS_SCHEMA:
        found = data.get("schema") if isinstance(data, Mapping) else type(data).__name__
        raise ResultsFileError(
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
        raise ResultsFileError(f"{source}: malformed results file: {exc!r}") from exc
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

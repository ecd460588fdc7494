"""ragkeel's own test-set format: JSONL, one case a line::

    {"id": "keys-1", "question": "How often are API keys rotated?", "expect": "answer",
     "reference_answers": ["every 90 days"], "relevant_doc_ids": ["api-key-rotation"],
     "tags": ["edge"], "output_schema": {...}, "relevant_source_globs": ["*keys*"]}
    {"id": "keys-1-f", "history": ["How often are API keys rotated?"],
     "question": "Who does it?", "expect": "answer", ...}

``history`` (issue 15): a follow-up's earlier user questions in its conversation, oldest first;
the question is asked after them and made standalone from them (``generation.condense``).

``id``, ``question`` and ``expect`` (``answer`` | ``cannot_answer``) are required; the lists
default to empty, ``output_schema`` to none; ``qrels`` (doc id → grade) is allowed so a BEIR case
survives a round trip. Validation is strict, because a typo must not silently drop what a case
checks: an unknown key, a wrong type, an empty question, an invalid JSON schema, reference answers
on a ``cannot_answer`` case or an id used twice is a ``DatasetError`` naming the file and line.
Blank lines and lines starting with ``#`` are skipped. ``write_case`` appends one case with the
same rules (and refuses an id the file already has), so what it writes always loads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jsonschema.exceptions import best_match
from jsonschema.validators import Draft202012Validator

from ragkeel.errors import DatasetError
from ragkeel.evaluation.cases import CorpusSpec, EvalCase, EvalDataset
from ragkeel.evaluation.datasets.files import (
    files_sha256,
    malformed,
    require_file,
    sample_cases,
    slugify,
)
from ragkeel.evaluation.metrics.answers import schema_problem

TAG_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
_TEXT = {"type": "string", "pattern": r"\S"}
_TEXTS = {"type": "array", "items": _TEXT}
LINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "question", "expect"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": r"^\S(.*\S)?$"},
        "question": _TEXT,
        "expect": {"enum": ["answer", "cannot_answer"]},
        "reference_answers": _TEXTS,
        "relevant_doc_ids": _TEXTS,
        "relevant_source_globs": _TEXTS,
        "qrels": {"type": "object", "additionalProperties": {"type": "integer"}},
        "output_schema": {"type": "object"},
        "tags": {"type": "array", "items": {"type": "string", "pattern": TAG_PATTERN}},
        "history": _TEXTS,
    },
}
_VALIDATOR = Draft202012Validator(LINE_SCHEMA)


def load_testset(
    path: Path,
    *,
    corpus_paths: Sequence[str | Path] = (),
    collection: str | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> EvalDataset:
    """The cases of ``path``; ``corpus_paths`` (what to ingest, into ``collection``, by default
    the file's slugged name) or no corpus (ask against what is indexed)."""
    require_file(path, "the test set")
    cases = tuple(_read_cases(path))
    corpus = None
    if corpus_paths:
        corpus = CorpusSpec(tuple(str(p) for p in corpus_paths), collection or slugify(path.stem))
    return EvalDataset(
        name=path.stem,
        kind="testset",
        source=path,
        sha256=files_sha256([path]),
        cases=sample_cases(cases, limit, seed),
        corpus=corpus,
    )


def case_to_json(case: EvalCase) -> dict[str, Any]:
    """The JSONL record of ``case`` (empty optional fields left out); ``ValueError`` when the
    case could not be loaded back (the same rules as ``load_testset``)."""
    record: dict[str, Any] = {
        "id": case.id,
        "question": case.question,
        "expect": case.expect,
        "reference_answers": list(case.reference_answers),
        "relevant_doc_ids": list(case.relevant_doc_ids),
        "tags": list(case.tags),
    }
    if case.relevant_source_globs:
        record["relevant_source_globs"] = list(case.relevant_source_globs)
    if case.qrels:
        record["qrels"] = dict(case.qrels)
    if case.output_schema is not None:
        record["output_schema"] = dict(case.output_schema)
    if case.history:
        record["history"] = list(case.history)
    problem = _problem(record)
    if problem:
        raise ValueError(f"case {case.id!r} is not a valid test-set record: {problem}")
    return record


def case_from_json(record: Any) -> EvalCase:
    """The case a JSONL record describes; ``ValueError`` saying what is wrong with it."""
    problem = _problem(record)
    if problem:
        raise ValueError(problem)
    return EvalCase(
        id=record["id"],
        question=record["question"],
        reference_answers=tuple(record.get("reference_answers", ())),
        relevant_doc_ids=tuple(record.get("relevant_doc_ids", ())),
        relevant_source_globs=tuple(record.get("relevant_source_globs", ())),
        qrels=dict(record.get("qrels", {})),
        expect=record["expect"],
        output_schema=record.get("output_schema"),
        tags=tuple(record.get("tags", ())),
        history=tuple(record.get("history", ())),
    )


def write_case(path: Path, case: EvalCase) -> None:
    """Append ``case`` as one line to ``path`` (created with its folder if missing). Refuses a
    case whose id the file already has, and a file that does not load (never append to a
    broken file)."""
    try:
        line = json.dumps(case_to_json(case), ensure_ascii=False)
    except ValueError as exc:
        raise DatasetError(str(exc), hint="fix the case before adding it") from exc
    existing = b""
    if path.exists():
        ids = {c.id for c in _read_cases(path)}
        if case.id in ids:
            raise DatasetError(
                f"{path} already has a case with id {case.id!r}",
                hint="choose another id (--id) or edit the existing case",
            )
        existing = path.read_bytes()
    separator = "\n" if existing and not existing.endswith(b"\n") else ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"{separator}{line}\n")
    except OSError as exc:
        raise DatasetError(f"cannot write {path}: {exc.strerror}") from exc


def _read_cases(path: Path) -> list[EvalCase]:
    cases: list[EvalCase] = []
    seen: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path} as UTF-8 text: {exc}") from exc
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            case = case_from_json(json.loads(line))
        except json.JSONDecodeError as exc:
            raise malformed(path, line_no, f"invalid JSON ({exc.msg})") from exc
        except ValueError as exc:
            raise malformed(path, line_no, str(exc)) from exc
        if case.id in seen:
            raise malformed(path, line_no, f"id {case.id!r} already used on line {seen[case.id]}")
        seen[case.id] = line_no
        cases.append(case)
    return cases


def _problem(record: Any) -> str | None:
    error = best_match(_VALIDATOR.iter_errors(record))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        return f"{where}: {error.message}" if where else str(error.message)
    if record["expect"] == "cannot_answer" and record.get("reference_answers"):
        return "a cannot_answer case has no reference answers"
    schema = record.get("output_schema")
    if schema is not None:
        invalid = schema_problem(schema)
        if invalid:
            return f"output_schema is not a valid JSON schema: {invalid}"
    return None

"""Data set loaders: every format becomes an ``EvalDataset`` of ``EvalCase``s
(``evaluation/cases.py``).

- ``load_beir_cases``: a BEIR folder (``beir.load_beir``); one case per query of the split,
  ``relevant_doc_ids`` the judged documents with a grade above 0, ``qrels`` all judgements; the
  corpus is the folder's ``corpus.jsonl``; no reference answers (retrieval metrics only). The
  data set is named ``beir_dataset_name`` and checksummed ``beir_sha256`` (corpus, queries and
  the split's qrels), as the BEIR retrieval run (``run/retrieval.py``) names and checks it too.
- ``load_squad``: SQuAD v1.1-style JSON (XQuAD); one case per question, every answer text a
  reference, ``relevant_doc_ids`` its paragraph's id ``<slug(title)>-<paragraph index>``. The
  paragraphs become a BEIR-style ``corpus.jsonl`` (``_id``, ``title``, ``text``) under
  ``work_dir``, rewritten only when its content changes, so re-ingesting it is a no-op. A
  question marked ``is_impossible`` (SQuAD 2.0) expects "cannot answer".
- ``load_csv_qa``: a CSV QA set like ``sec-10q-sample/qna.csv`` (columns Question, Source Docs,
  Question Type, Source Chunk Type, Answer): ``relevant_source_globs`` from Source Docs, the
  answer without its trailing ``SOURCE(S): …`` / ``(SOURCE: …)`` note as the reference, tags from
  the two type columns (slugged); the corpus is ``docs_dir``.
- ``load_testset`` / ``write_case`` / ``case_to_json``: ragkeel's own JSONL (``testset.py``).

``limit`` takes a seeded, stable sample (``files.sample_cases``); ``sha256`` is the
checksum of the source file(s). Malformed input is a ``DatasetError`` naming the file and the
line (or the JSON path), never skipped.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonschema.exceptions import best_match
from jsonschema.validators import Draft202012Validator

from ragkeel.errors import DatasetError
from ragkeel.evaluation.cases import CorpusSpec, EvalCase, EvalDataset
from ragkeel.evaluation.datasets.beir import BeirDataset, load_beir
from ragkeel.evaluation.datasets.files import (
    files_sha256,
    malformed,
    require_file,
    sample_cases,
    slugify,
    write_if_changed,
)
from ragkeel.evaluation.datasets.testset import case_to_json, load_testset, write_case

__all__ = [
    "CSV_COLUMNS",
    "case_to_json",
    "load_beir_cases",
    "load_csv_qa",
    "load_squad",
    "load_testset",
    "squad_paragraph_id",
    "strip_source_note",
    "write_case",
]

CSV_COLUMNS = ("Question", "Source Docs", "Question Type", "Source Chunk Type", "Answer")
# "…\n\nSOURCE(S): 2022 Q3 AAPL.pdf" or "… (SOURCE: x.pdf)": only at a line start or after "("
_SOURCE_NOTE = re.compile(
    r"(?:(?:^|\n)[ \t]*\(?|\()\s*SOURCES?(?:\(S\))?\s*:[^\n]*$", re.IGNORECASE
)
_TEXT = {"type": "string", "pattern": r"\S"}
_SQUAD_QA = {
    "type": "object",
    "required": ["id", "question", "answers"],
    "properties": {
        "id": _TEXT,
        "question": _TEXT,
        "answers": {"type": "array", "items": {"type": "object", "required": ["text"]}},
        "is_impossible": {"type": "boolean"},
    },
}
_SQUAD_PARAGRAPH = {
    "type": "object",
    "required": ["context", "qas"],
    "properties": {"context": _TEXT, "qas": {"type": "array", "items": _SQUAD_QA}},
}
_SQUAD_ARTICLE = {
    "type": "object",
    "required": ["title", "paragraphs"],
    "properties": {"title": _TEXT, "paragraphs": {"type": "array", "items": _SQUAD_PARAGRAPH}},
}
_SQUAD = Draft202012Validator(
    {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": _SQUAD_ARTICLE}},
    }
)


def load_beir_cases(
    directory: Path,
    split: str = "test",
    *,
    limit: int | None = None,
    seed: int = 0,
    collection: str | None = None,
) -> EvalDataset:
    beir = load_beir(directory, split)
    cases = [
        EvalCase(
            id=qid,
            question=text,
            relevant_doc_ids=tuple(d for d, grade in beir.qrels[qid].items() if grade > 0),
            qrels=dict(beir.qrels[qid]),
            tags=("beir",),
        )
        for qid, text in beir.queries.items()
    ]
    return EvalDataset(
        name=beir_dataset_name(beir),
        kind="beir",
        source=directory,
        sha256=beir_sha256(beir),
        cases=sample_cases(cases, limit, seed),
        corpus=CorpusSpec((str(beir.corpus_path),), collection or slugify(beir.name)),
    )


def beir_dataset_name(beir: BeirDataset) -> str:
    """The data set name of a BEIR split: ``<name>-<split>`` (an eval config renames it)."""
    return f"{beir.name}-{beir.split}"


def beir_sha256(beir: BeirDataset) -> str:
    """The checksum of a BEIR split: its corpus, queries and the split's qrels."""
    directory = beir.corpus_path.parent
    return files_sha256(
        [beir.corpus_path, directory / "queries.jsonl", directory / "qrels" / f"{beir.split}.tsv"]
    )


def squad_paragraph_id(title: str, paragraph_index: int) -> str:
    return f"{slugify(title) or 'untitled'}-{paragraph_index}"


def load_squad(
    path: Path,
    *,
    limit: int | None = None,
    seed: int = 0,
    work_dir: Path,
    collection: str | None = None,
) -> EvalDataset:
    data = _read_squad(path)
    name = slugify(path.stem) or "squad"
    cases: list[EvalCase] = []
    corpus: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    for a, article in enumerate(data["data"]):
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = squad_paragraph_id(article["title"], p)
            if seen.setdefault(doc_id, article["title"]) != article["title"]:
                raise malformed(
                    path,
                    None,
                    f"titles {seen[doc_id]!r} and {article['title']!r} "
                    f"give the same paragraph id {doc_id!r}",
                )
            title = article["title"].replace("_", " ")
            corpus.append({"_id": doc_id, "title": title, "text": paragraph["context"]})
            for q, qa in enumerate(paragraph["qas"]):
                where = f"data/{a}/paragraphs/{p}/qas/{q}"
                cases.append(_squad_case(path, where, qa, doc_id))
    _unique_ids(path, cases)
    corpus_path = work_dir / name / "corpus.jsonl"
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in corpus)
    write_if_changed(corpus_path, lines.encode("utf-8"))
    return EvalDataset(
        name=name,
        kind="squad",
        source=path,
        sha256=files_sha256([path]),
        cases=sample_cases(cases, limit, seed),
        corpus=CorpusSpec((str(corpus_path),), collection or name),
    )


def _read_squad(path: Path) -> dict[str, Any]:
    require_file(path, "the SQuAD file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path} as UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise malformed(path, exc.lineno, f"invalid JSON ({exc.msg})") from exc
    error = best_match(_SQUAD.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise malformed(path, None, f"at {where}: {error.message} (expected SQuAD v1.1 JSON)")
    return dict(data)


def _squad_case(path: Path, where: str, qa: dict[str, Any], doc_id: str) -> EvalCase:
    impossible = bool(qa.get("is_impossible", False))
    answers = [a["text"].strip() for a in qa["answers"] if isinstance(a.get("text"), str)]
    references = tuple(dict.fromkeys(a for a in answers if a))
    if not impossible and not references:
        raise malformed(path, None, f"at {where}: a question without an answer text")
    return EvalCase(
        id=qa["id"],
        question=qa["question"].strip(),
        reference_answers=() if impossible else references,
        relevant_doc_ids=() if impossible else (doc_id,),
        expect="cannot_answer" if impossible else "answer",
        tags=("squad", "impossible") if impossible else ("squad",),
    )


def strip_source_note(answer: str) -> str:
    """``answer`` without a trailing ``SOURCE(S): …`` line or ``(SOURCE: …)`` note."""
    return _SOURCE_NOTE.sub("", answer).strip()


def load_csv_qa(
    path: Path,
    *,
    docs_dir: Path,
    limit: int | None = None,
    seed: int = 0,
    collection: str | None = None,
) -> EvalDataset:
    require_file(path, "the CSV QA file")
    cases = list(_csv_cases(path))
    _unique_ids(path, cases)
    name = slugify(path.parent.name if path.stem == "qna" else path.stem) or "csv-qa"
    return EvalDataset(
        name=name,
        kind="csv_qa",
        source=path,
        sha256=files_sha256([path]),
        cases=sample_cases(cases, limit, seed),
        corpus=CorpusSpec((str(docs_dir),), collection or name),
    )


def _csv_cases(path: Path) -> Iterator[EvalCase]:
    prefix = slugify(path.stem) or "row"
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise malformed(path, 1, f"missing column(s) {', '.join(missing)}")
            start = reader.line_num + 1
            for number, row in enumerate(reader, start=1):
                yield _csv_case(path, start, f"{prefix}-{number}", row)
                start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise DatasetError(f"{path}: not valid CSV ({exc})") from exc
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from exc


def _csv_case(path: Path, line_no: int, case_id: str, row: dict[str, str | None]) -> EvalCase:
    values = {c: (row.get(c) or "").strip() for c in CSV_COLUMNS}
    for column in ("Question", "Source Docs", "Answer"):
        if not values[column]:
            raise malformed(path, line_no, f"empty {column!r}")
    reference = strip_source_note(values["Answer"])
    if not reference:
        raise malformed(path, line_no, "the answer is only a source note")
    globs = tuple(g.strip() for g in values["Source Docs"].splitlines() if g.strip())
    tags = tuple(
        t for t in (slugify(values["Question Type"]), slugify(values["Source Chunk Type"])) if t
    )
    return EvalCase(
        id=case_id,
        question=values["Question"],
        reference_answers=(reference,),
        relevant_source_globs=globs,
        tags=tags,
    )


def _unique_ids(path: Path, cases: list[EvalCase]) -> None:
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise malformed(path, None, f"case id {case.id!r} appears twice")
        seen.add(case.id)

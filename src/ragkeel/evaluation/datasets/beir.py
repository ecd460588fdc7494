"""Evaluation data sets. BEIR layout, read in place::

    <dir>/corpus.jsonl        {"_id": ..., "title": ..., "text": ...} per line (streamed)
    <dir>/queries.jsonl       {"_id": ..., "text": ...} per line
    <dir>/qrels/<split>.tsv   header "query-id<TAB>corpus-id<TAB>score", then one judgement a line

As in BEIR's ``GenericDataLoader``, only the queries that appear in the split's qrels are kept,
and qrels rows with grade 0 are kept (they are judgements, just not relevant ones). Unlike it,
nothing is silently fixed: a missing file, a malformed line, a qrels query with no text or a
judgement given twice with different grades raises :class:`~ragkeel.errors.DatasetError`
naming the file and the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ragkeel.errors import DatasetError

QRELS_HEADER = ("query-id", "corpus-id", "score")


@dataclass(frozen=True, slots=True)
class BeirDocument:
    """One corpus record."""

    id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class BeirDataset:
    """A BEIR data set split: queries and qrels in memory, the corpus streamed from disk."""

    name: str
    split: str
    corpus_path: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def corpus(self) -> Iterator[BeirDocument]:
        """Stream the corpus, one document a line; every call starts from the beginning."""
        for line_no, record in _json_lines(self.corpus_path):
            yield BeirDocument(
                id=_field(record, "_id", self.corpus_path, line_no),
                title=_field(record, "title", self.corpus_path, line_no, default=""),
                text=_field(record, "text", self.corpus_path, line_no),
            )

    @property
    def n_judgements(self) -> int:
        return sum(len(docs) for docs in self.qrels.values())


def load_beir(directory: Path, split: str = "test") -> BeirDataset:
    """Load a BEIR data set from ``directory`` (see the module docstring for the layout)."""
    corpus_path = directory / "corpus.jsonl"
    _require_file(corpus_path, "the BEIR corpus")
    qrels = _read_qrels(_qrels_path(directory, split))
    queries_path = directory / "queries.jsonl"
    _require_file(queries_path, "the BEIR queries")
    all_queries = _read_queries(queries_path)
    missing = sorted(qid for qid in qrels if qid not in all_queries)
    if missing:
        raise DatasetError(
            f"{len(missing)} query ids in qrels/{split}.tsv have no text in {queries_path}: "
            f"{', '.join(missing[:5])}",
            hint="the qrels and queries files must come from the same data set",
        )
    queries = {qid: all_queries[qid] for qid in qrels}
    return BeirDataset(directory.name, split, corpus_path, queries, qrels)


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise DatasetError(
            f"{what} file {path} does not exist",
            hint="point at a directory with corpus.jsonl, queries.jsonl and qrels/<split>.tsv",
        )


def _qrels_path(directory: Path, split: str) -> Path:
    path = directory / "qrels" / f"{split}.tsv"
    if not path.is_file():
        available = sorted(p.stem for p in (directory / "qrels").glob("*.tsv"))
        raise DatasetError(
            f"qrels file {path} for split {split!r} does not exist",
            hint=f"available splits: {', '.join(available) or 'none'}",
        )
    return path


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers, decoded as UTF-8 one at a time."""
    try:
        with path.open("rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    raise _malformed(path, line_no, f"not UTF-8 ({exc.reason})") from exc
                if line.strip():
                    yield line_no, line
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from exc


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    for line_no, line in _lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _malformed(path, line_no, f"invalid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise _malformed(path, line_no, "expected a JSON object")
        yield line_no, record


def _field(
    record: dict[str, object], key: str, path: Path, line_no: int, default: str | None = None
) -> str:
    value = record.get(key, default)
    if not isinstance(value, str):
        problem = "missing" if value is None else f"not a string ({type(value).__name__})"
        raise _malformed(path, line_no, f"field {key!r} is {problem}")
    return value


def _read_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for line_no, record in _json_lines(path):
        qid = _field(record, "_id", path, line_no)
        if qid in queries:
            raise _malformed(path, line_no, f"query id {qid!r} appears twice")
        queries[qid] = _field(record, "text", path, line_no)
    return queries


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    lines = _lines(path)
    first = next(lines, None)
    if first is None or tuple(first[1].split("\t")) != QRELS_HEADER:
        raise _malformed(
            path,
            first[0] if first else 1,
            "expected the header line " + repr("\t".join(QRELS_HEADER)),
        )
    for line_no, line in lines:
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise _malformed(path, line_no, "expected query-id<TAB>corpus-id<TAB>score")
        qid, doc_id, raw_score = parts
        try:
            score = int(raw_score)
        except ValueError as exc:
            raise _malformed(path, line_no, f"score {raw_score!r} is not an integer") from exc
        judged = qrels.setdefault(qid, {})
        if judged.get(doc_id, score) != score:
            raise _malformed(path, line_no, f"({qid}, {doc_id}) judged twice with different grades")
        judged[doc_id] = score
    if not qrels:
        raise _malformed(path, first[0], "the file has a header but no judgements")
    return qrels


def _malformed(path: Path, line_no: int, problem: str) -> DatasetError:
    return DatasetError(f"{path}:{line_no}: {problem}", hint="fix or re-download the data set file")

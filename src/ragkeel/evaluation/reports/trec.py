"""TREC run files: ``qid Q0 docid rank score tag``, one retrieved document a line.

Lines are written query by query (query ids sorted), each query's documents in trec_eval order
(float32 score descending, ties by document id descending; see
:func:`~ragkeel.evaluation.metrics.retrieval.trec_ranking`), with 1-based ranks. Scores are
written with ``repr`` so reading the file back gives the exact same floats. When reading, the
rank column is ignored, as trec_eval ignores it: only the scores define the order.
"""

from __future__ import annotations

import math
from pathlib import Path

from ragkeel.errors import DatasetError
from ragkeel.evaluation.metrics.retrieval import Run, trec_ranking
from ragkeel.evaluation.reports.retrieval_report import write_text_atomic


def write_trec_run(path: Path, run: Run, tag: str) -> None:
    """Write ``run`` to ``path`` (atomically); ids and tag must be non-empty, without spaces."""
    _check_token(tag, "run tag")
    lines: list[str] = []
    for qid in sorted(run):
        _check_token(qid, "query id")
        scores = run[qid]
        for rank, doc_id in enumerate(trec_ranking(scores), start=1):
            _check_token(doc_id, "document id")
            score = float(scores[doc_id])
            if math.isnan(score):
                raise DatasetError(f"score of ({qid}, {doc_id}) is NaN; a run needs real scores")
            lines.append(f"{qid} Q0 {doc_id} {rank} {score!r} {tag}\n")
    write_text_atomic(path, "".join(lines))


def read_trec_run(path: Path) -> dict[str, dict[str, float]]:
    """Read a TREC run file; :class:`DatasetError` names the file and line of any problem."""
    run: dict[str, dict[str, float]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read run file {path}: {exc}") from exc
    for line_no, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise _malformed(path, line_no, f"expected 6 fields, found {len(fields)}")
        qid, _, doc_id, _, raw_score, _ = fields
        try:
            score = float(raw_score)
        except ValueError as exc:
            raise _malformed(path, line_no, f"score {raw_score!r} is not a number") from exc
        if math.isnan(score):
            raise _malformed(path, line_no, "score is NaN")
        scores = run.setdefault(qid, {})
        if doc_id in scores:
            raise _malformed(path, line_no, f"document {doc_id!r} listed twice for query {qid!r}")
        scores[doc_id] = score
    return run


def _check_token(value: str, what: str) -> None:
    if not value or any(ch.isspace() for ch in value):
        raise DatasetError(
            f"{what} {value!r} cannot be written to a TREC run file",
            hint="TREC files are whitespace-separated: ids and tag must be non-empty, no spaces",
        )


def _malformed(path: Path, line_no: int, problem: str) -> DatasetError:
    return DatasetError(
        f"{path}:{line_no}: {problem}", hint="expected 'qid Q0 docid rank score tag' per line"
    )

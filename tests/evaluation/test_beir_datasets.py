"""BEIR loader: the real SciFact files (read in place) and small malformed copies on tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragkeel.errors import DatasetError
from ragkeel.evaluation.datasets.beir import BeirDocument, load_beir

_DEFAULT = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "scifact"  # repo/../shared
SCIFACT = Path(os.environ.get("RAGKEEL_SCIFACT_DIR", str(_DEFAULT)))
needs_scifact = pytest.mark.skipif(
    not (SCIFACT / "corpus.jsonl").is_file(),
    reason=f"SciFact not found at {SCIFACT}; set RAGKEEL_SCIFACT_DIR",
)


@needs_scifact
def test_scifact_test_split() -> None:
    data = load_beir(SCIFACT)
    assert (data.name, data.split) == ("scifact", "test")
    assert len(data.queries) == 300
    assert data.n_judgements == 339
    assert set(data.queries) == set(data.qrels)
    assert all(text.strip() for text in data.queries.values())
    assert data.qrels["1"] == {"31715818": 1}


@needs_scifact
def test_scifact_train_split() -> None:
    data = load_beir(SCIFACT, "train")
    assert len(data.queries) == 809
    assert data.n_judgements == 919


@needs_scifact
def test_scifact_corpus_streams_every_document_and_restarts() -> None:
    data = load_beir(SCIFACT)
    first = next(data.corpus())
    assert first.id == "4983"
    assert first.title.startswith("Microstructural development of human newborn")
    ids = [doc.id for doc in data.corpus()]
    assert ids[0] == "4983"
    assert len(ids) == len(set(ids)) == 5183


@needs_scifact
def test_unknown_split_names_the_available_ones() -> None:
    with pytest.raises(DatasetError, match=r"split 'dev'") as info:
        load_beir(SCIFACT, "dev")
    assert info.value.hint == "available splits: test, train"


# ---------------------------------------------------------------- synthetic data sets

HEADER = "query-id\tcorpus-id\tscore\n"


def make_beir(
    root: Path,
    *,
    corpus: str = '{"_id": "d1", "title": "T", "text": "one"}\n{"_id": "d2", "text": "two"}\n',
    queries: str = '{"_id": "q1", "text": "first?"}\n{"_id": "q2", "text": "second?"}\n',
    qrels: str = HEADER + "q1\td1\t2\nq1\td2\t0\n",
) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(corpus, encoding="utf-8")
    (root / "queries.jsonl").write_text(queries, encoding="utf-8")
    (root / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return root


def test_small_dataset_round_trip(tmp_path: Path) -> None:
    data = load_beir(make_beir(tmp_path / "tiny"))
    assert data.name == "tiny"
    assert data.queries == {"q1": "first?"}  # q2 has no judgements in this split
    assert data.qrels == {"q1": {"d1": 2, "d2": 0}}  # grade-0 rows are kept
    assert list(data.corpus()) == [BeirDocument("d1", "T", "one"), BeirDocument("d2", "", "two")]


def test_blank_lines_and_crlf_are_tolerated(tmp_path: Path) -> None:
    root = make_beir(tmp_path, qrels="query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\n\r\n")
    assert load_beir(root).qrels == {"q1": {"d1": 1}}


@pytest.mark.parametrize("missing", ["corpus.jsonl", "queries.jsonl"])
def test_missing_file(tmp_path: Path, missing: str) -> None:
    root = make_beir(tmp_path)
    (root / missing).unlink()
    with pytest.raises(DatasetError, match=missing):
        load_beir(root)


@pytest.mark.parametrize(
    ("qrels", "line", "problem"),
    [
        ("q1\td1\t1\n", 1, "expected the header line"),
        ("", 1, "expected the header line"),
        (HEADER, 1, "no judgements"),
        (HEADER + "q1\td1\n", 2, "expected query-id<TAB>corpus-id<TAB>score"),
        (HEADER + "q1\td1\t1\n\nq1\td2\thigh\n", 4, "'high' is not an integer"),
        (HEADER + "q1\td1\t1\nq1\td1\t2\n", 3, "judged twice with different grades"),
    ],
)
def test_malformed_qrels_name_file_and_line(
    tmp_path: Path, qrels: str, line: int, problem: str
) -> None:
    root = make_beir(tmp_path, qrels=qrels)
    with pytest.raises(DatasetError, match=problem) as info:
        load_beir(root)
    assert info.value.message.startswith(f"{root / 'qrels' / 'test.tsv'}:{line}: ")
    assert info.value.code == "DATASET_INVALID"


@pytest.mark.parametrize(
    ("queries", "line", "problem"),
    [
        ('{"_id": "q1", "text": "a"}\n{"_id": "q2", "text": \n', 2, "invalid JSON"),
        ('["q1", "a"]\n', 1, "expected a JSON object"),
        ('{"_id": "q1"}\n', 1, "field 'text' is missing"),
        ('{"_id": 1, "text": "a"}\n', 1, r"field '_id' is not a string \(int\)"),
        ('{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n', 2, "appears twice"),
    ],
)
def test_malformed_queries_name_file_and_line(
    tmp_path: Path, queries: str, line: int, problem: str
) -> None:
    root = make_beir(tmp_path, queries=queries)
    with pytest.raises(DatasetError, match=problem) as info:
        load_beir(root)
    assert info.value.message.startswith(f"{root / 'queries.jsonl'}:{line}: ")


def test_qrels_query_without_text(tmp_path: Path) -> None:
    root = make_beir(tmp_path, qrels=HEADER + "q1\td1\t1\nq9\td1\t1\n")
    with pytest.raises(DatasetError, match=r"have no text in .*: q9"):
        load_beir(root)


def test_corpus_errors_surface_while_streaming(tmp_path: Path) -> None:
    corpus = '{"_id": "d1", "text": "ok"}\n{"_id": "d2", "title": 3, "text": "x"}\n'
    data = load_beir(make_beir(tmp_path, corpus=corpus))
    docs = data.corpus()
    assert next(docs).id == "d1"
    with pytest.raises(DatasetError, match=r"corpus\.jsonl:2: field 'title' is not a string"):
        next(docs)


def test_non_utf8_line_is_reported_with_its_number(tmp_path: Path) -> None:
    root = make_beir(tmp_path)
    (root / "corpus.jsonl").write_bytes(
        b'{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "\xff"}\n'
    )
    with pytest.raises(DatasetError, match=r"corpus\.jsonl:2: not UTF-8"):
        list(load_beir(root).corpus())

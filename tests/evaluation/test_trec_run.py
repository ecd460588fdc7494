"""TREC run files: exact round trips, trec_eval order on disk, pytrec_eval's parser agrees."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytrec_eval
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragkeel.errors import DatasetError
from ragkeel.evaluation.metrics.retrieval import Run
from ragkeel.evaluation.reports.trec import read_trec_run, write_trec_run


def test_lines_are_in_trec_order_with_one_based_ranks(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "bm25.trec"
    run = {"q2": {"x": 0.5}, "q1": {"a": 1.0, "d10": 1.0, "d9": 1.0, "z": 2.5}}
    write_trec_run(path, run, "bm25")
    assert path.read_text(encoding="utf-8").splitlines() == [
        "q1 Q0 z 1 2.5 bm25",
        "q1 Q0 d9 2 1.0 bm25",
        "q1 Q0 d10 3 1.0 bm25",
        "q1 Q0 a 4 1.0 bm25",
        "q2 Q0 x 1 0.5 bm25",
    ]
    assert list(tmp_path.joinpath("runs").iterdir()) == [path]  # no temporary file left


def test_rank_column_is_ignored_on_read(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    path.write_text("q1 Q0 a 7 0.25 t\n\nq1 Q0 b 1 0.75 t\n", encoding="utf-8")
    assert read_trec_run(path) == {"q1": {"a": 0.25, "b": 0.75}}


ids = st.text(alphabet="abcXYZ019_-.:é", min_size=1, max_size=8)
runs = st.dictionaries(
    ids,
    st.dictionaries(ids, st.floats(allow_nan=False, width=64), min_size=1, max_size=20),
    max_size=5,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(run=runs)
def test_round_trip_is_exact_and_matches_pytrec_eval_parser(tmp_path: Path, run: Run) -> None:
    path = tmp_path / "run.trec"
    write_trec_run(path, run, "tag")
    assert read_trec_run(path) == run
    with path.open(encoding="utf-8") as handle:
        assert dict(pytrec_eval.parse_run(handle)) == run


@pytest.mark.parametrize(
    ("bad", "what"),
    [
        ({"q 1": {"a": 1.0}}, "query id"),
        ({"q1": {"": 1.0}}, "document id"),
        ({"q1": {"a\tb": 1.0}}, "document id"),
    ],
)
def test_ids_with_whitespace_cannot_be_written(tmp_path: Path, bad: Run, what: str) -> None:
    with pytest.raises(DatasetError, match=what):
        write_trec_run(tmp_path / "run.trec", bad, "tag")
    assert not list(tmp_path.iterdir())


def test_bad_tag_and_nan_score_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="run tag"):
        write_trec_run(tmp_path / "run.trec", {"q": {"a": 1.0}}, "my run")
    with pytest.raises(DatasetError, match="NaN"):
        write_trec_run(tmp_path / "run.trec", {"q": {"a": float("nan")}}, "t")


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("q1 Q0 a 1 0.5\n", 1, "expected 6 fields, found 5"),
        ("q1 Q0 a 1 0.5 t\nq1 Q0 b 2 high t\n", 2, "'high' is not a number"),
        ("q1 Q0 a 1 nan t\n", 1, "NaN"),
        ("q1 Q0 a 1 0.5 t\nq2 Q0 a 1 0.5 t\nq1 Q0 a 2 0.1 t\n", 3, "'a' listed twice"),
    ],
)
def test_malformed_run_names_file_and_line(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = tmp_path / "run.trec"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError, match=problem) as info:
        read_trec_run(path)
    assert info.value.message.startswith(f"{path}:{line}: ")


def test_missing_run_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read run file"):
        read_trec_run(tmp_path / "absent.trec")

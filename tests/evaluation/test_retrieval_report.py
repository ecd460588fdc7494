"""Retrieval reports: JSON round trip, atomic writes, the plain-text table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ragkeel.errors import DatasetError
from ragkeel.evaluation.reports.retrieval_report import (
    RetrievalReport,
    latency_percentiles,
    write_text_atomic,
)


class Secret:
    def __str__(self) -> str:
        return "**********"


def make_report(**overrides: object) -> RetrievalReport:
    fields: dict[str, object] = {
        "dataset": "scifact",
        "split": "test",
        "mode": "hybrid",
        "k": 10,
        "n_queries": 300,
        "metrics": {"ndcg_cut_10": 0.6712345, "recall_100": 0.925},
        "latency_p50_ms": 12.34,
        "latency_p95_ms": 40.0,
        "settings": {"retrieval": {"fusion": "rrf", "rrf_k": 60}},
        "created_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    fields.update(overrides)
    return RetrievalReport(**fields)  # type: ignore[arg-type]


def test_json_round_trip() -> None:
    report = make_report()
    data = json.loads(report.to_json())
    assert data["schema_version"] == 1
    assert data["created_at"] == "2025-01-02T03:04:05+00:00"
    assert data["metrics"] == {"ndcg_cut_10": 0.6712345, "recall_100": 0.925}
    assert RetrievalReport.from_json(report.to_json()) == report


def test_created_at_defaults_to_now_in_utc() -> None:
    report = RetrievalReport("d", "test", "bm25", 10, 1, {}, 1.0, 2.0)
    assert report.created_at.tzinfo is UTC
    assert abs((datetime.now(UTC) - report.created_at).total_seconds()) < 60


def test_settings_values_that_are_not_json_are_written_with_str() -> None:
    report = make_report(settings={"api_key": Secret(), "home": Path("/tmp/rk")})
    assert json.loads(report.to_json())["settings"] == {"api_key": "**********", "home": "/tmp/rk"}


@pytest.mark.parametrize(
    "text",
    ["[]", "{}", '{"schema_version": 99}', "not json", '{"schema_version": 1, "dataset": "x"}'],
)
def test_from_json_rejects_other_documents(text: str) -> None:
    with pytest.raises(DatasetError, match="not a retrieval report"):
        RetrievalReport.from_json(text)


def test_write_json_is_atomic_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "scifact.json"
    make_report(mode="bm25").write_json(path)
    make_report(mode="dense").write_json(path)
    assert RetrievalReport.from_json(path.read_text(encoding="utf-8")).mode == "dense"
    assert [p.name for p in path.parent.iterdir()] == ["scifact.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text("old", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(path, "bad \udc80 surrogate")
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_render_table() -> None:
    assert make_report().render_table() == (
        "scifact/test  mode=hybrid  k=10  queries=300  2025-01-02 03:04:05 UTC\n"
        "metric         value\n"
        "-----------  -------\n"
        "ndcg_cut_10   0.6712\n"
        "recall_100    0.9250\n"
        "latency p50  12.3 ms\n"
        "latency p95  40.0 ms\n"
    )


def test_latency_percentiles() -> None:
    assert latency_percentiles([]) == (0.0, 0.0)
    assert latency_percentiles([5.0]) == (5.0, 5.0)
    p50, p95 = latency_percentiles([float(v) for v in range(1, 101)])
    assert p50 == pytest.approx(50.5)
    assert p95 == pytest.approx(95.05)

"""``SqliteFeedbackStore`` on a real trace file: ratings parsed and bounded, stored beside the
traces (the trace store keeps working on the same file), the newest rating per trace, negative
ratings for regression cases, and a write that cannot be made raises."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeel.errors import FeedbackInvalidError, TraceStoreError
from ragkeel.observability.feedback import (
    MAX_COMMENT_CHARS,
    Feedback,
    SqliteFeedbackStore,
    check_comment,
    parse_rating,
)
from ragkeel.observability.trace import Trace
from ragkeel.observability.trace_store import SqliteTraceStore


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "obs" / "traces.db"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteFeedbackStore]:
    s = SqliteFeedbackStore(path)
    yield s
    s.close()


@pytest.mark.parametrize(
    ("sent", "stored"), [("up", "up"), (" DOWN ", "down"), (1, "1"), (5, "5"), ("3", "3")]
)
def test_ratings_that_are_accepted(sent: object, stored: str) -> None:
    assert parse_rating(sent) == stored


@pytest.mark.parametrize("sent", [0, 6, -1, True, False, "", "12", "meh", 2.0, None, "0"])
def test_ratings_that_are_refused(sent: object) -> None:
    with pytest.raises(FeedbackInvalidError) as info:
        parse_rating(sent)
    assert info.value.code == "FEEDBACK_INVALID"


def test_comments_are_stripped_and_bounded() -> None:
    assert check_comment("  wrong year  ") == "wrong year"
    assert check_comment("   ") is None
    assert check_comment(None) is None
    assert check_comment("x" * MAX_COMMENT_CHARS) == "x" * MAX_COMMENT_CHARS
    with pytest.raises(FeedbackInvalidError):
        check_comment("x" * (MAX_COMMENT_CHARS + 1))


def test_negative_is_down_one_or_two() -> None:
    assert [Feedback("t", r, "default").negative for r in ("down", "1", "2", "3", "up")] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_stored_beside_the_traces(path: Path, store: SqliteFeedbackStore) -> None:
    traces = SqliteTraceStore(path)
    trace_id = traces.record(Trace(route="api.query", question="q?", outcome="answered"))
    stored = store.add(Feedback(trace_id, "down", "team-a", "wrong"))
    assert stored.id is not None
    later = traces.record(Trace(route="api.query", question="q2?", outcome="answered"))
    assert traces.get(later) is not None  # the trace store still writes to the same file
    traces.close()
    again = SqliteFeedbackStore(path)  # reopened: the rows are kept
    assert [(f.rating, f.comment, f.tenant) for f in again.for_trace(trace_id)] == [
        ("down", "wrong", "team-a")
    ]
    again.close()


def test_the_newest_rating_counts(store: SqliteFeedbackStore) -> None:
    store.add(Feedback("a" * 32, "down", "default", created_at=1.0))
    store.add(Feedback("a" * 32, "up", "default", created_at=2.0))
    store.add(Feedback("b" * 32, "up", "default", created_at=3.0))
    store.add(Feedback("b" * 32, "1", "default", "bad", created_at=4.0))
    store.add(Feedback("c" * 32, "2", "other", created_at=5.0))
    latest = store.latest(["a" * 32, "b" * 32, "d" * 32])
    assert {k: v.rating for k, v in latest.items()} == {"a" * 32: "up", "b" * 32: "1"}
    assert [f.trace_id for f in store.negative()] == ["c" * 32, "b" * 32]
    assert [f.trace_id for f in store.negative(since=4.5)] == ["c" * 32]
    assert store.counts() == {"down": 1, "up": 2, "1": 1, "2": 1}
    assert store.counts(tenant="other") == {"2": 1}
    assert [f.rating for f in store.for_trace("a" * 32)] == ["down", "up"]


def test_a_write_that_cannot_be_made_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    store = SqliteFeedbackStore(blocker / "traces.db")
    with pytest.raises(TraceStoreError):
        store.add(Feedback("a" * 32, "up", "default"))
    with pytest.raises(TraceStoreError):
        store.for_trace("a" * 32)

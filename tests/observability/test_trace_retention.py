"""Trace retention on a real file (issue 12): by age, by size (oldest out first, the space
given back to the file system), in the background, never losing a concurrent write."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from pathlib import Path

from ragkeel.observability.trace_store import Retention, SqliteTraceStore, TraceFilter

from .conftest import full_trace

DAY = 86_400.0
NOW = 1_800_000_000.0
EVERY = TraceFilter(tenants=None, limit=1000)


def _bulky(i: int, **changes: object) -> object:
    return full_trace(
        id=f"{i:032x}", created_at=NOW - 1, output=f"answer {i} " + "x" * 4000, **changes
    )


def test_traces_past_their_age_are_deleted_and_younger_ones_kept(tmp_path: Path) -> None:
    store = SqliteTraceStore(tmp_path / "traces.db", retention=Retention(max_age_s=30 * DAY))
    old = [full_trace(id=f"{i:032x}", created_at=NOW - 31 * DAY - i) for i in range(1, 1201)]
    young = [full_trace(id=f"{i:032x}", created_at=NOW - 29 * DAY) for i in range(2000, 2005)]
    for t in [*old, *young]:
        store.record(t)
    report = store.sweep(now=NOW)
    assert (report.deleted_by_age, report.deleted_by_size) == (len(old), 0)
    assert {s.id for s in store.search(EVERY)} == {t.id for t in young}
    assert store.sweep(now=NOW).deleted_by_age == 0  # idempotent
    store.close()


def test_over_the_size_cap_the_oldest_go_and_the_file_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    cap = 2 * 2**20
    store = SqliteTraceStore(path, retention=Retention(max_age_s=None, max_bytes=cap))
    traces = [_bulky(i) for i in range(1, 2001)]  # ~9 MB of outputs
    for t in traces:
        store.record(t)  # type: ignore[arg-type]
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.stat().st_size
    report = store.sweep(now=NOW)
    assert report.live_bytes_before > 4 * cap and report.live_bytes_after <= cap
    assert report.deleted_by_size > 1000 and report.deleted_by_age == 0
    kept = [s.id for s in store.search(EVERY)]
    assert kept == [t.id for t in traces[-len(kept) :]][::-1]  # the newest, all of them
    assert len(kept) + report.deleted_by_size == len(traces)
    assert report.file_bytes < before / 2, (report.file_bytes, before)  # given back
    assert report.wal_bytes <= 16 * 2**20
    assert store.dropped == 0
    store.close()


def test_a_file_made_without_incremental_vacuum_still_keeps_to_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    with sqlite3.connect(path) as conn:  # an older ragkeel's file: auto_vacuum off
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE placeholder (x)")
    cap = 2**20
    store = SqliteTraceStore(path, retention=Retention(max_age_s=None, max_bytes=cap))
    for i in range(1, 801):
        store.record(_bulky(i))  # type: ignore[arg-type]
    report = store.sweep()
    assert report.live_bytes_after <= cap and report.deleted_by_size > 0
    store.close()


def test_the_background_sweep_runs_while_traces_are_written(tmp_path: Path) -> None:
    retention = Retention(max_age_s=DAY, max_bytes=None, interval_s=0.05)
    store = SqliteTraceStore(tmp_path / "traces.db", retention=retention)
    old = full_trace(created_at=time.time() - 2 * DAY)
    store.record(old)  # the first write starts the sweeper
    deadline = time.monotonic() + 10
    while store.get(old.id) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.get(old.id) is None
    young = full_trace()
    store.record(young)
    time.sleep(0.2)  # a few more sweeps
    assert store.get(young.id) == young
    started = time.monotonic()
    store.close()
    assert time.monotonic() - started < 5
    assert not any(
        t.name == "ragkeel-trace-retention" and t.is_alive() for t in threading.enumerate()
    )


def test_writes_during_a_sweep_are_kept(tmp_path: Path) -> None:
    store = SqliteTraceStore(
        tmp_path / "traces.db", retention=Retention(max_age_s=None, max_bytes=2**20, batch=50)
    )
    for i in range(1, 1001):
        store.record(_bulky(i))  # type: ignore[arg-type]
    fresh = [
        dataclasses.replace(full_trace(), id=f"{10**6 + i:032x}", created_at=NOW)
        for i in range(200)
    ]

    def write() -> None:
        for t in fresh:
            store.record(t)

    writer = threading.Thread(target=write)
    writer.start()
    store.sweep(now=NOW)
    writer.join(timeout=30)
    assert store.dropped == 0
    assert all(store.get(t.id) == t for t in fresh)  # newest: never the ones deleted
    store.close()


def test_feedback_goes_with_the_traces_retention_deletes(tmp_path: Path) -> None:
    """A rating names its trace (the question, the answer): when retention deletes the trace the
    rating goes too, instead of an orphan row that ``eval add-case --from-feedback`` can only
    skip and that outlives the retention the operator set."""
    from ragkeel.observability.feedback import Feedback, SqliteFeedbackStore

    path = tmp_path / "traces.db"
    store = SqliteTraceStore(path, retention=Retention(max_age_s=30 * DAY))
    old = full_trace(id=f"{1:032x}", created_at=NOW - 31 * DAY)
    young = full_trace(id=f"{2:032x}", created_at=NOW - DAY)
    store.record(old)
    store.record(young)
    feedback = SqliteFeedbackStore(path)
    for t in (old, young):
        feedback.add(Feedback(trace_id=t.id, created_at=NOW, tenant="default", rating="down"))
    assert store.sweep(now=NOW).deleted_by_age == 1
    assert feedback.for_trace(old.id) == []
    assert [f.rating for f in feedback.for_trace(young.id)] == ["down"]
    assert [f.trace_id for f in feedback.negative()] == [young.id]
    feedback.close()
    store.close()


def test_retention_without_a_feedback_table_still_sweeps(tmp_path: Path) -> None:
    store = SqliteTraceStore(tmp_path / "traces.db", retention=Retention(max_age_s=DAY))
    store.record(full_trace(created_at=NOW - 2 * DAY))
    assert store.sweep(now=NOW).deleted_by_age == 1
    store.close()

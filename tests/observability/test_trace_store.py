"""``SqliteTraceStore`` on a real file: round trip, listing, prompt redaction, and writes that
never fail the request."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeel.errors import TraceStoreError
from ragkeel.observability import names
from ragkeel.observability.trace import PromptRecord, Trace, new_trace_id
from ragkeel.observability.trace_store import SCHEMA_VERSION, NullTraceStore, SqliteTraceStore
from ragkeel.testing.contracts.trace_store import GATEWAY, TraceStoreContract, TraceStoreOpener

from .conftest import PROMPT, full_trace


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteTraceStore]:
    s = SqliteTraceStore(tmp_path / "obs" / "traces.db")
    yield s
    s.close()


class TestSqliteTraceStore(TraceStoreContract):
    """The trace-store contract (``ragkeel.testing.contracts.trace_store``) over SQLite."""

    @pytest.fixture
    def open_store(self, tmp_path: Path) -> TraceStoreOpener:
        return lambda: SqliteTraceStore(tmp_path / "obs" / "traces.db")


def test_wal_mode_and_schema_version(store: SqliteTraceStore) -> None:
    store.record(full_trace())
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM traces").fetchone()[0] == 1


def test_ids_are_unique_and_sort_by_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_trace_id() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)
    assert before <= int(ids[0][:12], 16) <= int(ids[-1][:12], 16) <= after
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_prompt_is_hashed_and_text_dropped_when_not_kept(tmp_path: Path) -> None:
    record = PromptRecord.of(PROMPT, tokens=30, keep_text=False)
    assert record.text is None and record.chars == len(PROMPT) and record.tokens == 30
    assert record.sha256 == hashlib.sha256(PROMPT.encode()).hexdigest()
    store = SqliteTraceStore(tmp_path / "traces.db", keep_prompt_text=False)
    trace = full_trace()  # carries the text: the store drops it on the way to disk
    store.record(trace)
    got = store.get(trace.id)
    store.close()
    assert got is not None and got.prompt == record
    with sqlite3.connect(tmp_path / "traces.db") as conn:
        row = conn.execute("SELECT prompt_text, prompt_sha256 FROM traces").fetchone()
    assert row == (None, record.sha256)
    assert "Rotate..." not in (tmp_path / "traces.db").read_bytes().decode("latin-1")


def test_a_corrupt_file_drops_writes_without_raising(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "traces.db"
    path.write_bytes(b"this is not a database" * 200)
    with caplog.at_level(logging.WARNING, "ragkeel.observability.trace_store"):
        store = SqliteTraceStore(path)
        trace = full_trace()
        assert store.record(trace) == trace.id and store.record(full_trace()) != trace.id
    assert store.dropped == 2
    assert "cannot open the trace store" in caplog.text and f"trace {trace.id}" in caplog.text
    with pytest.raises(TraceStoreError) as info:
        store.recent()
    assert info.value.code == "TRACE_STORE_ERROR" and "not a database" in str(info.value)
    store.close()


def test_an_unusable_path_drops_writes(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = SqliteTraceStore(blocker / "traces.db")  # its parent is a file: mkdir fails
    store.record(full_trace())
    assert store.dropped == 1


def test_a_failing_insert_and_a_closed_store_drop_writes(
    store: SqliteTraceStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.record(full_trace())
    with sqlite3.connect(store.path) as other:  # someone damages the schema under us
        other.execute("DROP TABLE traces")
    with caplog.at_level(logging.WARNING):
        store.record(full_trace())
    assert store.dropped == 1 and "no such table" in caplog.text
    store.close()
    store.record(full_trace())
    assert store.dropped == 2
    with pytest.raises(TraceStoreError, match="closed"):
        store.get("x")


def test_a_newer_schema_is_not_written_to(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    store = SqliteTraceStore(path)
    store.record(full_trace())
    assert store.dropped == 1
    with pytest.raises(TraceStoreError, match="newer"):
        store.recent()


def test_null_store_records_nothing() -> None:
    null = NullTraceStore()
    assert null.record(full_trace()) is None
    assert null.get("x") is None and null.recent() == [] and null.dropped == 0
    null.close()


def test_attributes_use_the_opentelemetry_names() -> None:
    attrs = full_trace().attributes()
    assert attrs[names.GEN_AI_REQUEST_MODEL] == "scripted"
    assert attrs[names.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[names.GEN_AI_USAGE_INPUT_TOKENS] == 120
    assert attrs[names.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert attrs[names.GATE_PASSED] is True and attrs[names.RETRIEVAL_TOP_CHUNK_ID] == "c1"
    assert attrs[names.LATENCY_TOTAL_MS] == 42.125
    assert names.ERROR_TYPE not in attrs and names.GATE_KEYWORD_THRESHOLD not in attrs
    failed = Trace(route="cli.ask", question="q", outcome="error", error_code="STORE_ERROR")
    assert failed.attributes()[names.ERROR_TYPE] == "STORE_ERROR"
    assert names.GEN_AI_REQUEST_MODEL not in failed.attributes()


def test_to_dict_is_json(store: SqliteTraceStore) -> None:
    trace = full_trace()
    data = json.loads(json.dumps(trace.to_dict()))
    assert data["id"] == trace.id and data["created_at"].endswith("Z")
    assert data["retrieved"][0]["keyword_rank"] == 1 and data["prompt"]["text"] == PROMPT
    assert data["gate"]["reason"] == "dense" and data["error"] is None
    assert data["attributes"]["gen_ai.usage.input_tokens"] == 120


def test_a_v1_store_is_upgraded_in_place_keeping_its_traces(tmp_path: Path) -> None:
    path = tmp_path / "traces.db"
    old = full_trace()
    store = SqliteTraceStore(path)
    store.record(old)
    store.close()
    with sqlite3.connect(path) as conn:  # make it a v1 file: no tenant/gateway columns
        conn.execute("DROP INDEX traces_by_tenant")  # v3's indexes
        conn.execute("DROP INDEX traces_by_created")
        conn.execute("ALTER TABLE traces DROP COLUMN tenant")
        conn.execute("ALTER TABLE traces DROP COLUMN gateway")
        conn.execute("PRAGMA user_version = 1")
    upgraded = SqliteTraceStore(path)
    try:
        assert upgraded.get(old.id) == old
        new = full_trace(tenant="t1", gateway=GATEWAY)
        upgraded.record(new)
        assert upgraded.get(new.id) == new and upgraded.dropped == 0
    finally:
        upgraded.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"traces_by_tenant", "traces_by_created"} <= indexes


def test_a_tenant_search_uses_the_tenant_index(store: SqliteTraceStore) -> None:
    store.record(full_trace(tenant="acme"))
    with sqlite3.connect(store.path) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM traces WHERE tenant IN (?) ORDER BY rowid DESC",
            ("acme",),
        ).fetchall()
    assert "traces_by_tenant" in " ".join(str(r[-1]) for r in plan)

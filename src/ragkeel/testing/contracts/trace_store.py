"""The trace-store contract: what every ``TraceStore`` that keeps traces
(``observability/trace_store.py``) must do — SQLite today; ``NullTraceStore`` is "tracing off"
and keeps nothing, so it is not a backend of this suite.

* A recorded trace reads back equal, every field included (tenant, gateway log, prompt,
  retrieved chunks, gate, citations), by its id or a unique prefix of ``MIN_PREFIX`` or more
  characters (any case); an ambiguous prefix raises ``TraceIdAmbiguousError``; a shorter one
  matches exactly only; an unknown id is ``None``.
* ``recent`` is newest first, bounded by ``limit`` and filtered by outcome; a bad outcome or
  limit is a ``ValueError``.
* ``search`` (issue 11, 12) is newest first, filters by tenant, outcome, route, model, time
  and text, pages with ``before`` (in the order of writing; a cursor the caller cannot see
  gives an empty page); ``get(..., tenants=)`` treats another tenant's trace (and a
  trace of no known tenant) as missing, and an id prefix is ambiguous only among the
  caller's own traces.
* Writers on several threads and several handles lose nothing and drop nothing.

A backend subclasses ``TraceStoreContract`` as ``Test...`` and overrides ``open_store``: a
function that opens a new handle on one fresh storage each time it is called (the suite closes
what it opens). ``full_trace`` builds a trace with every field set. Needs pytest (the ``dev``
extra).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ragkeel.errors import TraceFilterError, TraceIdAmbiguousError
from ragkeel.observability import names
from ragkeel.observability.trace import Outcome, PromptRecord, RetrievedChunk, Trace
from ragkeel.observability.trace_store import TraceFilter, TraceStore
from ragkeel.types import Citation, GateDecision

PROMPT = "[system]\nAnswer from the sources.\n\n[user]\n[1] API keys\nRotate...\n\nQuestion: ?"
GATEWAY: dict[str, Any] = {
    "served_by": "backup",
    "rung": 1,
    "cost": 0.0012,
    "attempts": [
        {"deployment": "primary", "outcome": "error", "code": "MODEL_UNAVAILABLE", "status": 503},
        {"deployment": "backup", "outcome": "ok", "code": None, "status": None},
    ],
    "decisions": [{"policy": "fallback", "reason": "primary failed (MODEL_UNAVAILABLE)"}],
}

TraceStoreOpener = Callable[[], TraceStore]


def full_trace(outcome: Outcome = "answered", **changes: Any) -> Trace:
    """A trace with every field set (values chosen to survive a JSON round trip exactly)."""
    trace = Trace(
        route="cli.ask",
        question="How often should I rotate an API key? ✓",
        outcome=outcome,
        mode="generative",
        model="scripted",
        template_version="answer_v1",
        grounded=True,
        input_tokens=120,
        output_tokens=12,
        cost=0.000125,
        latency_ms={"embed": 1.25, "keyword": 0.5, "dense": 0.75, "total": 42.125},
        retrieved=(
            RetrievedChunk("c1", "d1", 0.91, 1, 7.5, 2, 0.41),
            RetrievedChunk("c2", "d2", 0.33, None, None, 1, 0.44),
        ),
        gate=GateDecision(True, "dense", 0.44, 7.5, 0.3, None),
        prompt=PromptRecord.of(PROMPT, tokens=30, keep_text=True),
        output="Rotate every API key every ninety days [1].",
        citations=(
            Citation(
                number=1,
                chunk_id="c1",
                document_id="d1",
                source="/docs/keys.md",
                title="API keys",
                page=None,
                snippet="Rotate every...",
            ),
        ),
    )
    return dataclasses.replace(trace, **changes)


class TraceStoreContract:
    @pytest.fixture
    def open_store(self) -> TraceStoreOpener:
        raise NotImplementedError("override open_store: open a handle on one fresh trace store")

    @pytest.fixture
    def store(self, open_store: TraceStoreOpener) -> Iterator[TraceStore]:
        s = open_store()
        yield s
        s.close()

    def test_round_trip_keeps_every_field(self, store: TraceStore) -> None:
        trace = full_trace(degraded_reason="MODEL_TIMEOUT", degraded_detail="too slow")
        assert store.record(trace) == trace.id
        assert store.get(trace.id) == trace
        bare = Trace(route="api.query", question="q", outcome="error", error_code="QUERY_INVALID")
        store.record(bare)
        assert store.get(bare.id) == bare
        assert store.get("0" * 32) is None
        assert store.dropped == 0

    def test_tenant_and_gateway_round_trip(self, store: TraceStore) -> None:
        trace = full_trace(tenant="acme", gateway=GATEWAY)
        store.record(trace)
        got = store.get(trace.id)
        assert got == trace and got is not None
        assert got.attributes()[names.GATEWAY_SERVED_BY] == "backup"
        assert got.attributes()[names.GATEWAY_ATTEMPTS] == 2
        assert got.to_dict()["gateway"]["decisions"][0]["policy"] == "fallback"

    def test_get_takes_a_unique_prefix(self, store: TraceStore) -> None:
        a, b = (
            full_trace(id="0123456789abcdef" + "0" * 16),
            full_trace(id="0123456789abcdff" + "0" * 16),
        )
        store.record(a)
        store.record(b)
        assert store.get(a.id[:16]) == a and store.get(b.id[:15].upper()) == b
        with pytest.raises(TraceIdAmbiguousError) as info:
            store.get(a.id[:8])
        assert info.value.code == "TRACE_ID_AMBIGUOUS"
        assert store.get(a.id[:7]) is None  # too short to be a prefix: exact match only
        assert store.get("fedcba9876543210") is None

    def test_recent_is_newest_first_with_limit_and_outcome_filter(self, store: TraceStore) -> None:
        outcomes: list[Outcome] = ["answered", "error", "cannot_answer", "degraded", "answered"]
        outcomes.append("error")
        ids = [store.record(full_trace(o)) for o in outcomes]
        assert [t.id for t in store.recent()] == ids[::-1]
        assert [t.id for t in store.recent(limit=2)] == ids[:-3:-1]
        assert [t.id for t in store.recent(outcome="error")] == [ids[5], ids[1]]
        assert [t.id for t in store.recent(1, outcome="answered")] == [ids[4]]
        assert store.recent(outcome="degraded")[0].outcome == "degraded"
        with pytest.raises(ValueError, match="outcome must be one of"):
            store.recent(outcome="bogus")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="limit"):
            store.recent(0)

    def test_concurrent_writers_threads_and_a_second_handle(
        self, store: TraceStore, open_store: TraceStoreOpener
    ) -> None:
        other = open_store()

        def write(target: TraceStore) -> None:
            for _ in range(50):
                target.record(full_trace())

        threads = [threading.Thread(target=write, args=(s,)) for s in (store, store, other, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(store.recent(1000)) == 200 and store.dropped == other.dropped == 0
        other.close()

    def test_get_sees_only_the_given_tenants(self, store: TraceStore) -> None:
        a = full_trace(id="0123456789abcdef" + "a" * 16, tenant="acme")
        b = full_trace(id="0123456789abcdef" + "b" * 16, tenant="globex")
        old = full_trace(id="0123456789abcdef" + "c" * 16)  # no tenant (before issue 11)
        for t in (a, b, old):
            store.record(t)
        assert store.get(a.id, tenants={"acme"}) == a
        assert store.get(a.id, tenants={"globex"}) is None
        assert store.get(old.id, tenants={"acme", "globex", "default"}) is None
        assert store.get(old.id) == old and store.get(b.id, tenants=None) == b
        assert store.get(a.id, tenants=()) is None
        # a prefix shared with other tenants' traces is not ambiguous, nor does it find them
        assert store.get(a.id[:16], tenants={"acme"}) == a
        assert store.get(b.id[:20].upper(), tenants={"globex"}) == b
        assert store.get(b.id[:16], tenants={"initech"}) is None
        with pytest.raises(TraceIdAmbiguousError):
            store.get(a.id[:16], tenants={"acme", "globex"})

    def test_search_filters_and_pages_newest_first(self, store: TraceStore) -> None:
        t0 = 1_800_000_000.0
        rows = [
            full_trace("answered", id=f"{i:02x}" + "0" * 30, created_at=t0 + i, tenant=tenant)
            for i, tenant in enumerate(["acme", "acme", "globex", "acme", "globex", "acme"])
        ]
        rows[1] = dataclasses.replace(rows[1], outcome="error", route="api.query", model=None)
        rows[3] = dataclasses.replace(rows[3], question="Where is 100%_done?", model="big")
        rows[5] = dataclasses.replace(rows[5], output="the CANARY-xyz answer")
        for t in rows:
            store.record(t)

        def ids(**where: Any) -> list[str]:
            where.setdefault("tenants", None)
            return [s.id for s in store.search(TraceFilter(**where))]

        every = [t.id for t in rows]
        assert ids() == every[::-1]
        acme = frozenset({"acme"})
        assert ids(tenants=acme) == [every[5], every[3], every[1], every[0]]
        assert ids(tenants=frozenset()) == []
        assert ids(tenants=acme, outcome="error") == [every[1]]
        assert ids(route="api.query") == [every[1]] and ids(model="big") == [every[3]]
        assert ids(since=t0 + 2, until=t0 + 4) == [every[3], every[2]]
        assert ids(text="canary-XYZ") == [every[5]]  # output, case-insensitive (ASCII)
        assert ids(text="100%_") == [every[3]] and ids(text="%") == [every[3]]  # literal
        assert ids(text="rotate", tenants=frozenset({"globex"})) == [every[4], every[2]]
        page1 = ids(tenants=acme, limit=2)
        page2 = ids(tenants=acme, limit=2, before=page1[-1])
        assert page1 + page2 == [every[5], every[3], every[1], every[0]]
        assert ids(tenants=acme, limit=2, before=page2[-1]) == []
        # a cursor the caller cannot see (another tenant's trace, no trace) pages to nothing
        assert ids(tenants=acme, before=every[4]) == [] and ids(before="f" * 32) == []
        assert ids(tenants=None, before=every[4]) == every[3::-1]
        top = store.search(TraceFilter(tenants=acme, limit=1))[0]
        assert (top.tenant, top.outcome, top.model, top.cost) == (
            "acme",
            "answered",
            "scripted",
            0.000125,
        )
        assert top.total_ms == 42.125 and top.question == rows[5].question
        assert top.to_dict()["created_at"] == rows[5].created_iso

    @pytest.mark.parametrize(
        "bad",
        [
            {"outcome": "bogus"},
            {"limit": 0},
            {"limit": 1001},
            {"since": 2.0, "until": 1.0},
            {"text": "x" * 201},
            {"before": "not-hex"},
            {"before": "A" * 32},
            {"before": "0" * 33},
        ],
    )
    def test_a_bad_filter_is_refused_with_its_code(self, bad: dict[str, Any]) -> None:
        with pytest.raises(TraceFilterError) as info:
            TraceFilter(tenants=None, **bad)
        assert info.value.code == "TRACE_FILTER_INVALID"

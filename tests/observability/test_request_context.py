"""The request context (observability/context.py): ids, nesting, threads, and the trace that
takes the id of the request it was built in."""

from __future__ import annotations

import contextvars
import threading

import pytest

from ragkeel.observability.context import (
    bind_tenant,
    current,
    current_trace_id,
    is_trace_id,
    new_trace_id,
    request_context,
)
from ragkeel.observability.trace import Trace


def test_a_trace_built_in_a_request_takes_its_id() -> None:
    assert current() is None
    outside = Trace(route="cli.ask", question="q", outcome="answered")
    with request_context("cli.ask", tenant="acme") as ctx:
        inside = Trace(route="cli.ask", question="q", outcome="answered")
        assert inside.id == ctx.trace_id == current_trace_id()
        assert (ctx.route, ctx.tenant) == ("cli.ask", "acme")
    assert outside.id != inside.id and is_trace_id(outside.id)
    assert current() is None


def test_contexts_nest_and_restore() -> None:
    with request_context("a") as outer:
        with request_context("b") as inner:
            assert current_trace_id() == inner.trace_id != outer.trace_id
        assert current_trace_id() == outer.trace_id


def test_a_given_id_must_be_a_trace_id() -> None:
    tid = new_trace_id()
    with request_context("r", trace_id=tid) as ctx:
        assert ctx.trace_id == tid
    for bad in ("0" * 32, "ABC", tid.upper(), tid + "0"):
        with pytest.raises(ValueError, match="not a trace id"), request_context("r", trace_id=bad):
            pass


def test_bind_tenant_fills_in_the_shared_context() -> None:
    bind_tenant("nobody")  # outside a request: nothing to bind, no error
    with request_context("r") as ctx:
        bind_tenant(None)
        assert ctx.tenant is None
        bind_tenant("acme")
        assert ctx.tenant == "acme"


def test_a_copied_context_follows_into_a_thread_a_plain_thread_does_not() -> None:
    seen: dict[str, str | None] = {}
    with request_context("r") as ctx:
        copied = contextvars.copy_context()
        t1 = threading.Thread(target=copied.run, args=(lambda: seen.update(a=current_trace_id()),))
        t2 = threading.Thread(target=lambda: seen.update(b=current_trace_id()))
        for t in (t1, t2):
            t.start()
            t.join(5)
    assert seen == {"a": ctx.trace_id, "b": None}


def test_ids_are_unique_and_time_ordered() -> None:
    ids = [new_trace_id() for _ in range(500)]
    assert len(set(ids)) == 500 and all(is_trace_id(i) for i in ids)
    assert [i[:12] for i in ids] == sorted(i[:12] for i in ids)

"""The current request: its trace id, route and tenant, in a ``contextvars.ContextVar``.

The id is assigned when a request *starts* (an API request in ``api/app.py``'s
``RequestContextMiddleware``, ``ragkeel ask``, each case of ``ragkeel eval run``), so whatever
runs on its behalf can say which request it belongs to before the trace exists: log lines
(``logs.py``), metrics, exported spans. The trace recorded at the end takes the same id
(``Trace.id`` defaults to ``current_or_new_trace_id()``), and the API returns it to the client
as the ``X-Trace-Id`` response header on every response.

A context variable follows the code: into ``await``-ed calls of the same task, into threads
started with ``contextvars.copy_context().run`` (``api/event_pump.py`` runs the answer's thread
so) and into ``run_in_threadpool``. A plain ``threading.Thread`` starts with an empty context:
there ``current()`` is ``None`` and a trace gets a fresh id.

``RequestContext`` is mutable on purpose in one field: the tenant is only known once the caller
has been authenticated (``api/auth.py``) or the answer started, after the context was entered;
``bind_tenant`` fills it in for everyone holding the same context (the outermost middleware
included, which logs the request when it ends).

Trace ids are 32 hex digits, like a ULID: 48 bits of Unix milliseconds, then 80 random bits. They
sort by time to the millisecond, and their first 16 digits (what ``ragkeel traces`` shows) tell
two traces of the same millisecond apart with 16 random bits. The format is that of a W3C
``traceparent`` trace id, so an OpenTelemetry span can carry the same id.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

TRACE_ID_HEADER = "X-Trace-Id"
_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def new_trace_id() -> str:
    """32 hex digits: Unix milliseconds (12), then 80 random bits (20)."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.randbits(80):020x}"


def is_trace_id(text: str) -> bool:
    """32 lowercase hex digits, not all zero (W3C's invalid trace id)."""
    return _TRACE_ID.fullmatch(text) is not None and text != "0" * 32


@dataclass(slots=True)
class RequestContext:
    """One request as its log lines, metrics and trace know it. ``route``: the entry point
    (``names.ROUTE_*`` for answers, else the HTTP path); ``tenant``: ``None`` until known."""

    trace_id: str
    route: str
    tenant: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("ragkeel_request", default=None)


def current() -> RequestContext | None:
    """The request being served by this code, if any."""
    return _current.get()


def current_trace_id() -> str | None:
    ctx = _current.get()
    return ctx.trace_id if ctx is not None else None


def current_or_new_trace_id() -> str:
    """The current request's trace id, else a fresh one (code outside any request)."""
    ctx = _current.get()
    return ctx.trace_id if ctx is not None else new_trace_id()


@contextmanager
def request_context(
    route: str, *, tenant: str | None = None, trace_id: str | None = None
) -> Iterator[RequestContext]:
    """Enter a request: a new context with a fresh trace id (or ``trace_id``, e.g. one an
    upstream ``traceparent`` carried; it must satisfy ``is_trace_id``), restored on exit."""
    if trace_id is not None and not is_trace_id(trace_id):
        raise ValueError(f"not a trace id (32 lowercase hex digits): {trace_id!r}")
    ctx = RequestContext(trace_id or new_trace_id(), route, tenant)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def bind_tenant(tenant: str | None) -> None:
    """Record whose request this is, once known; no-op outside a request or for ``None``."""
    ctx = _current.get()
    if ctx is not None and tenant is not None:
        ctx.tenant = tenant


def bind_route(route: str) -> None:
    """Name the entry point more precisely than the path (``names.ROUTE_API_QUERY``...)."""
    ctx = _current.get()
    if ctx is not None:
        ctx.route = route

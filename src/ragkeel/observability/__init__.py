"""Observability: a trace for every request (``trace.py``), where traces are kept
(``trace_store.py``) and the span/attribute names they use (``names.py``).

Layer: infra. It imports only the core (types, errors, settings, tokens, integrity); the
generation layer turns its ``Answer`` into a ``Trace`` (``generation/tracing.py``).
"""

from ragkeel.errors import (
    TraceFilterError,
    TraceIdAmbiguousError,
    TraceNotFoundError,
    TraceStoreError,
)
from ragkeel.observability.trace import (
    OUTCOMES,
    Outcome,
    PromptRecord,
    RetrievedChunk,
    Trace,
    new_trace_id,
)
from ragkeel.observability.trace_store import (
    NullTraceStore,
    SqliteTraceStore,
    TraceFilter,
    TraceStore,
    TraceSummary,
)

__all__ = [
    "OUTCOMES",
    "NullTraceStore",
    "Outcome",
    "PromptRecord",
    "RetrievedChunk",
    "SqliteTraceStore",
    "Trace",
    "TraceFilter",
    "TraceFilterError",
    "TraceIdAmbiguousError",
    "TraceNotFoundError",
    "TraceStore",
    "TraceStoreError",
    "TraceSummary",
    "new_trace_id",
]

"""Observability: the current request and its trace id (``context.py``), a trace for every
request (``trace.py``), where traces are kept (``trace_store.py``) and the span/attribute names
they use (``names.py``); OpenTelemetry spans through a facade every layer may record with
(``tracing.py``), in the GenAI and OpenInference conventions (``genai.py``), exported over
OTLP/HTTP by the SDK adapter (``otel.py``, the only importer of the SDK; not imported here);
Prometheus metrics (``metrics.py``) and log lines (``logs.py``).

Layer: infra, below the other backends (the gateway records each model call as a span). It
imports only the core (types, errors, settings, tokens, integrity); the generation layer turns
its ``Answer`` into a ``Trace`` and stage spans (``generation/tracing.py``).
"""

from ragkeel.errors import (
    TraceFilterError,
    TraceIdAmbiguousError,
    TraceNotFoundError,
    TraceStoreError,
)
from ragkeel.observability.context import (
    RequestContext,
    current_trace_id,
    new_trace_id,
    request_context,
)
from ragkeel.observability.trace import (
    OUTCOMES,
    Outcome,
    PromptRecord,
    RetrievedChunk,
    Trace,
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
    "RequestContext",
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
    "current_trace_id",
    "new_trace_id",
    "request_context",
]

"""The tracer facade: OpenTelemetry-shaped spans for one request, with no OpenTelemetry import.

The layers below the edges record spans through this module only; the SDK lives in ``otel.py``
(``OtelTracer``), which the container builds when ``observability.otlp.endpoint`` is set.
Tracing off (the default) is the ``NullTracer``: every call here is a ``ContextVar`` read that
finds nothing, or a method of the shared ``NULL_SPAN`` that does nothing.

* An edge (the API middleware, ``ragkeel ask``, an evaluation case) opens the request's root
  span with ``request(tracer, name, ...)``: a context manager that makes it the *current* span
  (a ``ContextVar``: work handed to another thread carries it only in a copied context, as
  ``api/event_pump.py`` does) and ends it on the way out, with the error if one escaped.
* Below it, ``current()`` is the span to hang children on: ``child`` starts a live one (a model
  call: ``gateway/metering.py``), ``record`` adds one already finished from measured start and
  end times (the answer flow's stages: ``generation/tracing.py``), ``set`` and ``event`` add
  to it. Check ``recording`` before building attributes that cost something: it is False when
  tracing is off or the request was not sampled.
* ``active(span)`` makes another span current for a block (a provider call inside its attempt
  span), so ``propagation_headers()`` gives the W3C ``traceparent`` of the innermost span for an
  outgoing request (``gateway/providers/http_client.py``).

Attribute names: ``names.py``. Values: a scalar or a sequence of strings (OpenTelemetry's
homogeneous arrays), anything else is the caller's bug.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from typing import Literal, Protocol

from ragkeel.observability import names

SpanValue = str | int | float | bool | Sequence[str]
Attributes = Mapping[str, SpanValue]
SpanKind = Literal["internal", "server", "client"]


class Span(Protocol):
    @property
    def recording(self) -> bool:
        """Whether anything set on this span goes anywhere (False: tracing off, not sampled)."""
        ...

    @property
    def capture_content(self) -> bool:
        """Whether texts (question, documents, prompt, answer) may be put on spans."""
        ...

    def set(self, attributes: Attributes) -> None: ...

    def event(self, name: str, attributes: Attributes) -> None: ...

    def child(self, name: str, attributes: Attributes, *, kind: SpanKind = "internal") -> Span:
        """A live child span, started now; end it with ``end``."""
        ...

    def record(self, name: str, start_ns: int, end_ns: int, attributes: Attributes) -> Span:
        """A child span that started at ``start_ns`` and ended at ``end_ns`` (Unix nanoseconds);
        returns it ended, to ``record`` children of its own under it."""
        ...

    def fail(self, error: str) -> None:
        """Mark the span failed with ``error`` (a stable error code, or an HTTP status)."""
        ...

    def end(self, *, error: str | None = None) -> None:
        """End the span now; ``error``: the stable error code it failed with (``fail``)."""
        ...

    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` naming this span as the parent (None: tracing off)."""
        ...


class Tracer(Protocol):
    def root(
        self,
        name: str,
        attributes: Attributes,
        *,
        traceparent: str | None = None,
        kind: SpanKind = "internal",
    ) -> Span:
        """A request's root span, started now: a child of ``traceparent`` (the caller's W3C
        header) when it is valid, else the root of a new trace."""
        ...

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Export what is queued now (tests, shutdown); False if it did not finish in time."""
        ...

    @property
    def dropped(self) -> int:
        """Spans dropped so far: the exporter failed, or its queue was full."""
        ...

    def close(self) -> None: ...


class _NullSpan:
    """Tracing off: every method does nothing, every child is this span."""

    __slots__ = ()
    recording = False
    capture_content = False

    def set(self, attributes: Attributes) -> None:
        return None

    def event(self, name: str, attributes: Attributes) -> None:
        return None

    def child(self, name: str, attributes: Attributes, *, kind: SpanKind = "internal") -> Span:
        return self

    def record(self, name: str, start_ns: int, end_ns: int, attributes: Attributes) -> Span:
        return self

    def fail(self, error: str) -> None:
        return None

    def end(self, *, error: str | None = None) -> None:
        return None

    def traceparent(self) -> str | None:
        return None


NULL_SPAN: Span = _NullSpan()


class NullTracer:
    """Tracing off (no ``observability.otlp.endpoint``): the default, no SDK imported."""

    dropped = 0

    def root(
        self,
        name: str,
        attributes: Attributes,
        *,
        traceparent: str | None = None,
        kind: SpanKind = "internal",
    ) -> Span:
        return NULL_SPAN

    def flush(self, timeout_s: float = 10.0) -> bool:
        return True

    def close(self) -> None:
        return None


_CURRENT: ContextVar[Span | None] = ContextVar("ragkeel_span", default=None)


def current() -> Span:
    """The innermost span of this context (``NULL_SPAN`` when none is active)."""
    span = _CURRENT.get()
    return NULL_SPAN if span is None else span


def active(span: Span) -> AbstractContextManager[Span]:
    """Make ``span`` the current span inside the block (it is not ended on the way out)."""
    return _Active(span)


class _Active(AbstractContextManager[Span]):
    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token: Token[Span | None] | None = None

    def __enter__(self) -> Span:
        if self._span.recording or self._span.traceparent() is not None:
            self._token = _CURRENT.set(self._span)
        return self._span

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _CURRENT.reset(self._token)


def request(
    tracer: Tracer,
    name: str,
    attributes: Attributes,
    *,
    traceparent: str | None = None,
    kind: SpanKind = "internal",
) -> AbstractContextManager[Span]:
    """A request's root span, current inside the block and ended when it is left (an escaping
    exception marks it failed with its ``code``, or its class name)."""
    return _Request(tracer, name, attributes, traceparent, kind)


class _Request(AbstractContextManager[Span]):
    __slots__ = ("_active", "_args", "_span", "_tracer")

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        attributes: Attributes,
        traceparent: str | None,
        kind: SpanKind,
    ) -> None:
        self._tracer = tracer
        self._args = (name, attributes, traceparent, kind)
        self._span: Span = NULL_SPAN
        self._active: _Active | None = None

    def __enter__(self) -> Span:
        name, attributes, traceparent, kind = self._args
        self._span = self._tracer.root(name, attributes, traceparent=traceparent, kind=kind)
        self._active = _Active(self._span)
        return self._active.__enter__()

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        assert self._active is not None
        self._active.__exit__(kind, error, tb)
        code: str | None = None
        if isinstance(error, BaseException) and not isinstance(error, GeneratorExit):
            stable = getattr(error, "code", None)  # a RagkeelError's stable code
            code = stable if isinstance(stable, str) else type(error).__name__
        self._span.end(error=code)


def propagation_headers() -> dict[str, str] | None:
    """``{"traceparent": ...}`` naming the current span, for an outgoing request (None: no
    span is current: nothing to propagate)."""
    parent = current().traceparent()
    return None if parent is None else {names.TRACEPARENT: parent}

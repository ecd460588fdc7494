"""``OtelTracer``: the tracer facade (``tracing.py``) over the OpenTelemetry SDK, exporting over
OTLP/HTTP (protobuf) to ``observability.otlp.endpoint`` — Arize Phoenix, Langfuse, an
OpenTelemetry Collector, Jaeger, Tempo... The only module that imports the SDK (the ``otel``
extra: ``pip install 'ragkeel[otel]'``); the container imports it only when an endpoint is set.

* Resource: ``service.name`` and ``openinference.project.name`` (Phoenix files the spans under
  that project), both ``otlp.service_name``.
* Trace ids: a new trace takes the id of the request it belongs to (``context.py``, the id the
  trace store and ``X-Trace-Id`` show), so one id finds a request in ragkeel and in the backend;
  a request whose caller sent a ``traceparent`` joins the caller's trace instead (its ragkeel id
  is then the ``ragkeel.trace.id`` attribute of its root span). Span ids are random.
* ``scrub`` (the container passes ``generation.safety.mask_canaries``) is applied to the
  prompt and answer texts before they are recorded: no system-prompt canary leaves the process.
* Sampling: ``ParentBased(TraceIdRatioBased(otlp.sample_ratio))``: a request whose caller sent a
  sampled ``traceparent`` is traced, an unsampled one is not, a new trace with the ratio's
  probability. An unsampled span still propagates its ``traceparent`` (flags ``00``).
* Export never blocks or fails a request: spans end into a ``BatchSpanProcessor`` (a bounded
  queue, ``otlp.max_queue_size``; a worker thread exports batches). The OTLP exporter retries a
  503 or a refused connection with backoff for at most ``otlp.timeout_s``, in that worker; then
  the batch is dropped. ``dropped`` counts the spans lost: those of every failed export, and an
  estimate of those pushed out of a full queue (spans ended minus spans handed to the exporter,
  beyond the queue's size). ``flush`` exports what is queued (tests, shutdown); ``close`` flushes
  and stops the worker (bounded by ``otlp.timeout_s``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span as OtelApiSpan
from opentelemetry.trace import SpanKind as OtelKind
from opentelemetry.trace import Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ragkeel.observability import context, names
from ragkeel.observability.tracing import Attributes, Span, SpanKind
from ragkeel.settings import OtlpSettings

_KINDS = {"internal": OtelKind.INTERNAL, "server": OtelKind.SERVER, "client": OtelKind.CLIENT}
_PROPAGATOR = TraceContextTextMapPropagator()
_PROMPT_KEYS = (  # attributes that may hold a prompt's or an answer's text (``clean``)
    names.INPUT_VALUE,
    names.OUTPUT_VALUE,
    names.LLM_INPUT_MESSAGES,
    names.LLM_OUTPUT_MESSAGES,
)


class OtelTracer:
    """Spans for ``otlp`` (its endpoint must be set), exported in batches. ``exporter``
    replaces the OTLP/HTTP exporter (tests); ``scrub`` rewrites every text attribute."""

    def __init__(
        self,
        otlp: OtlpSettings,
        *,
        exporter: SpanExporter | None = None,
        scrub: Callable[[str], str] | None = None,
    ) -> None:
        if otlp.endpoint is None and exporter is None:
            raise ValueError("OtelTracer needs observability.otlp.endpoint")
        self.capture_content = otlp.capture_content
        self._scrub = scrub
        self._timeout_s = otlp.timeout_s
        headers = {k: v.get_secret_value() for k, v in otlp.headers.items()}
        inner = exporter or OTLPSpanExporter(
            endpoint=otlp.endpoint, headers=headers, timeout=otlp.timeout_s
        )
        self._exporter = _CountingExporter(inner)
        self._processor = _CountingProcessor(
            self._exporter, otlp.max_queue_size, int(otlp.timeout_s * 1000)
        )
        resource = Resource.create(
            {names.SERVICE_NAME: otlp.service_name, names.OI_PROJECT_NAME: otlp.service_name}
        )
        self._provider = TracerProvider(
            resource=resource,
            sampler=ParentBased(TraceIdRatioBased(otlp.sample_ratio)),
            shutdown_on_exit=False,  # the container closes it (an atexit hook per tracer leaks)
            id_generator=_RequestIdGenerator(),
        )
        self._provider.add_span_processor(self._processor)
        self._tracer = self._provider.get_tracer("ragkeel")

    def root(
        self,
        name: str,
        attributes: Attributes,
        *,
        traceparent: str | None = None,
        kind: SpanKind = "internal",
    ) -> Span:
        # an empty Context, not the current one: a request never nests in whatever else runs
        parent = _PROPAGATOR.extract({names.TRACEPARENT: traceparent}) if traceparent else Context()
        span = self._tracer.start_span(
            name, context=parent, kind=_KINDS[kind], attributes=self.clean(attributes)
        )
        return OtelSpan(span, self)

    def start(
        self,
        name: str,
        attributes: Attributes,
        parent: OtelApiSpan,
        *,
        kind: SpanKind = "internal",
        start_ns: int | None = None,
    ) -> OtelSpan:
        span = self._tracer.start_span(
            name,
            context=set_span_in_context(parent, Context()),
            kind=_KINDS[kind],
            attributes=self.clean(attributes),
            start_time=start_ns,
        )
        return OtelSpan(span, self)

    def clean(self, attributes: Attributes) -> Attributes:
        """``attributes`` with ``scrub`` applied to the prompt and answer texts (the values
        under ``input.value``, ``output.value`` and the ``llm.*_messages``: where a system
        prompt, or a model repeating it, can put the canary; documents carry their own text)."""
        scrub = self._scrub  # the messages come with input.value / output.value (genai.py)
        if scrub is None or (
            names.INPUT_VALUE not in attributes and names.OUTPUT_VALUE not in attributes
        ):
            return attributes
        return {
            k: scrub(v) if isinstance(v, str) and k.startswith(_PROMPT_KEYS) else v
            for k, v in attributes.items()
        }

    def flush(self, timeout_s: float = 10.0) -> bool:
        return self._provider.force_flush(int(timeout_s * 1000))

    @property
    def dropped(self) -> int:
        return self._exporter.failed + self._processor.overflow

    @property
    def exported(self) -> int:
        return self._exporter.exported

    def close(self) -> None:
        self._provider.shutdown()


class OtelSpan:
    """One SDK span behind the facade's ``Span``."""

    __slots__ = ("_owner", "_span")

    def __init__(self, span: OtelApiSpan, owner: OtelTracer) -> None:
        self._span, self._owner = span, owner

    @property
    def recording(self) -> bool:
        return self._span.is_recording()

    @property
    def capture_content(self) -> bool:
        return self._owner.capture_content

    def set(self, attributes: Attributes) -> None:
        self._span.set_attributes(self._owner.clean(attributes))

    def event(self, name: str, attributes: Attributes) -> None:
        self._span.add_event(name, self._owner.clean(attributes))

    def child(self, name: str, attributes: Attributes, *, kind: SpanKind = "internal") -> Span:
        return self._owner.start(name, attributes, self._span, kind=kind)

    def record(self, name: str, start_ns: int, end_ns: int, attributes: Attributes) -> Span:
        span = self._owner.start(name, attributes, self._span, start_ns=start_ns)
        span._span.end(end_time=max(end_ns, start_ns))
        return span

    def fail(self, error: str) -> None:
        self._span.set_attribute(names.ERROR_TYPE, error)
        self._span.set_status(Status(StatusCode.ERROR, error))

    def end(self, *, error: str | None = None) -> None:
        if error is not None:
            self.fail(error)
        self._span.end()

    def traceparent(self) -> str | None:
        ctx = self._span.get_span_context()
        if not ctx.is_valid:
            return None
        return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


class _RequestIdGenerator(IdGenerator):
    """A new trace's id: the current request's (``context.py``), else a random one."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        return self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        trace_id = context.current_trace_id()
        return int(trace_id, 16) if trace_id else self._random.generate_trace_id()


class _CountingExporter(SpanExporter):
    """``inner``, counting the spans handed to it, exported and lost (a failed export, or an
    exception from the exporter: both are a ``FAILURE``, never raised into the worker)."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.handed = self.exported = self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self.handed += len(spans)
        try:
            result = self._inner.export(spans)
        except Exception:  # an exporter bug must not kill the export worker: the batch is lost
            result = SpanExportResult.FAILURE
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.exported += len(spans)
            else:
                self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _CountingProcessor(SpanProcessor):
    """A ``BatchSpanProcessor`` that estimates the spans its full queue pushes out."""

    def __init__(self, exporter: _CountingExporter, max_queue: int, timeout_ms: int) -> None:
        self._exporter = exporter
        self._max_queue = max_queue
        self._batch = BatchSpanProcessor(
            exporter,
            max_queue_size=max_queue,
            max_export_batch_size=min(512, max_queue),
            export_timeout_millis=timeout_ms,
        )
        self._timeout_ms = timeout_ms
        self._lock = threading.Lock()
        self._ended = 0
        self.overflow = 0

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        self._batch.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            with self._lock:
                self._ended += 1
                queued = self._ended - self._exporter.handed - self.overflow
                if queued > self._max_queue:
                    self.overflow += 1
        self._batch.on_end(span)

    def shutdown(self) -> None:
        self._batch.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._batch.force_flush(timeout_millis)

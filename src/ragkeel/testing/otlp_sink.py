"""``OtlpSink``: an OTLP/HTTP traces receiver on 127.0.0.1 (``POST /v1/traces``, protobuf) that
keeps what it is sent as ``SinkSpan``s, or answers a status a test sets (``status=503``: a
collector that is down but listening). The network-level fake of the OpenTelemetry export tests
and the local sink of ``bench/trace_overhead.py``. Needs the ``otel`` extra (it decodes with
``opentelemetry-proto``); not imported by ``ragkeel.testing``'s ``__init__``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass(frozen=True, slots=True)
class SinkSpan:
    name: str
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_span_id: str  # "" for a root
    kind: int  # the OTLP enum: 1 internal, 2 server, 3 client
    start_ns: int
    end_ns: int
    status_code: int  # 0 unset, 1 ok, 2 error
    attributes: dict[str, Any]
    events: tuple[tuple[str, dict[str, Any]], ...]
    resource: dict[str, Any]


class OtlpSink:
    """Start with ``with OtlpSink() as sink:``; ``endpoint`` is the URL to export to."""

    def __init__(self, *, status: int = 200) -> None:
        self.status = status
        self.spans: list[SinkSpan] = []
        self.posts = 0  # export requests received, whatever was answered
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1/traces"

    def __enter__(self) -> OtlpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=2)

    def named(self, name: str) -> list[SinkSpan]:
        with self._lock:
            return [s for s in self.spans if s.name == name]

    def received(self, body: bytes) -> int:
        """Keep the spans of one export request; the status to answer."""
        with self._lock:
            self.posts += 1
            if self.status != 200:
                return self.status
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans: list[SinkSpan] = []
        for rs in request.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                spans.extend(_span(s, resource) for s in ss.spans)
        with self._lock:
            self.spans.extend(spans)
        return 200


def _span(s: Any, resource: dict[str, Any]) -> SinkSpan:
    return SinkSpan(
        name=s.name,
        trace_id=s.trace_id.hex(),
        span_id=s.span_id.hex(),
        parent_span_id=s.parent_span_id.hex(),
        kind=int(s.kind),
        start_ns=int(s.start_time_unix_nano),
        end_ns=int(s.end_time_unix_nano),
        status_code=int(s.status.code),
        attributes={a.key: _value(a.value) for a in s.attributes},
        events=tuple((e.name, {a.key: _value(a.value) for a in e.attributes}) for e in s.events),
        resource=resource,
    )


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def _handler_for(sink: OtlpSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status = sink.received(self.rfile.read(length))
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    """``python -m ragkeel.testing.otlp_sink``: a sink in a process of its own (a benchmark's
    collector must not share the measured process's CPU); prints its endpoint, then serves until
    stdin closes, and prints how many spans it received."""
    import sys

    with OtlpSink() as sink:
        print(sink.endpoint, flush=True)
        sys.stdin.read()
    print(len(sink.spans), flush=True)


if __name__ == "__main__":
    main()

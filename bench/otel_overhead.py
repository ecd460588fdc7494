"""What OpenTelemetry tracing and its export cost a request (issue 12).

1. The spans of one answer alone, in microseconds: the root span (in a request context), the
   retrieval span with 8 documents (as ``bench/trace_overhead.py``'s answer: ~480-character
   chunks, their content captured), the embedding and pack spans, the root's attributes from
   the trace; the real SDK with its batch processor, an exporter that drops the batches (the
   export's own CPU is in part 2). ``--spans`` answers, after 200 warm-up ones.
2. The same extractive ``POST /v1/query`` (no model: retrieval, the gate, packing, the quoted
answer, the trace store) through the whole app (FastAPI ``TestClient``, in process), over one
index (SQLite, the hashing embedder, a small corpus of the tests'), two apps side by side:
``observability.otlp`` off (the ``NullTracer``: no SDK imported) and on, exporting over
OTLP/HTTP to an ``OtlpSink`` on 127.0.0.1 in a process of its own (``python -m
ragkeel.testing.otlp_sink``: it decodes every batch, as a collector would). Requests alternate between the two in blocks of ``--block``, so
both see the same machine load; p50/p95/p99 per arm, in milliseconds, and the difference.
Spans exported and dropped are reported to show the export really ran.

Prints one JSON object.

    .venv/bin/python bench/otel_overhead.py [--spans 2000] [--requests 1000] [--block 50]
        [--with-metrics]   (the off arm also without metrics: the issue's on-vs-off)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from common import REPO, commit, machine, pct, today
from ragkeel.api import create_app
from ragkeel.container import Container
from ragkeel.observability.otel import OtelTracer
from ragkeel.settings import load_settings

sys.path.insert(0, str(REPO / "tests"))
from corpus import COLLECTION, ON_TOPIC, TEST_GATE, write_corpus

WARMUP = 50


def spans_alone(n: int) -> dict[str, float]:
    """Part 1: microseconds per answer's spans (p50/p95/p99)."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from ragkeel.generation.safety import mask_canaries
    from ragkeel.generation.tracing import record_stage_spans, trace_from_answer
    from ragkeel.observability import genai, tracing
    from ragkeel.observability.context import request_context
    from ragkeel.settings import OtlpSettings
    from trace_overhead import sample_answer

    class Dropping(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            return None

    tracer = OtelTracer(
        OtlpSettings(endpoint="http://127.0.0.1:9/v1/traces"),
        exporter=Dropping(),
        scrub=mask_canaries,
    )
    answers = [sample_answer(i) for i in range(n + 200)]
    traces = [trace_from_answer(a, route="/v1/query", keep_prompt_text=False) for a in answers]
    root = genai.root_attributes("/v1/query")
    us: list[float] = []
    for i, (answer, trace) in enumerate(zip(answers, traces, strict=True)):
        start = time.perf_counter()
        with (
            request_context("/v1/query"),
            tracing.request(tracer, "POST /v1/query", root, kind="server"),
        ):
            record_stage_spans(answer, time.time_ns())
            genai.annotate_request(trace)
        if i >= 200:
            us.append((time.perf_counter() - start) * 1e6)
    tracer.close()
    return {q: round(pct(us, p), 1) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))}


def _settings(home: Path, endpoint: str | None, metrics: str = "auto") -> Any:
    return load_settings(
        home=home,
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
        generation={"gate_threshold": TEST_GATE, "mode": "extractive", "provider": "none"},
        observability={"otlp": {"endpoint": endpoint}, "metrics": metrics},
    )


def _summary(ms: list[float]) -> dict[str, float]:
    return {q: round(pct(ms, p), 3) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=2000, help="answers, part 1")
    parser.add_argument("--requests", type=int, default=1000, help="per arm, part 2")
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument(
        "--with-metrics",
        action="store_true",
        help="the issue's comparison: the off arm also without Prometheus metrics "
        "(observability.metrics: off), so on - off = tracing + export + metrics",
    )
    args = parser.parse_args()
    alone_us = spans_alone(args.spans)
    body = {"question": ON_TOPIC, "collection": COLLECTION}
    samples: dict[str, list[float]] = {"off": [], "on": []}
    sink = subprocess.Popen(
        [sys.executable, "-m", "ragkeel.testing.otlp_sink"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None and sink.stdin is not None
    endpoint = sink.stdout.readline().strip()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        off = Container(_settings(home, None, "off" if args.with_metrics else "auto"))
        assert off.pipeline.ingest([str(write_corpus(Path(tmp) / "docs"))], COLLECTION)
        on = Container(_settings(home, endpoint))
        with TestClient(create_app(off)) as c_off, TestClient(create_app(on)) as c_on:
            clients = {"off": c_off, "on": c_on}
            for arm, client in clients.items():
                for _ in range(WARMUP):
                    assert client.post("/v1/query", json=body).status_code == 200, arm
            done = 0
            while done < args.requests:
                for arm, client in clients.items():
                    for _ in range(args.block):
                        start = time.perf_counter()
                        r = client.post("/v1/query", json=body)
                        samples[arm].append((time.perf_counter() - start) * 1000)
                        assert r.status_code == 200 and r.json()["mode"] == "extractive"
                done += args.block
            tracer = on.tracer
            assert isinstance(tracer, OtelTracer)
            tracer.flush(10)
            exported, dropped = tracer.exported, tracer.dropped
    sink.stdin.close()
    received = int(sink.stdout.readline().strip())
    sink.wait(timeout=10)
    off_s, on_s = _summary(samples["off"]), _summary(samples["on"])
    print(
        json.dumps(
            {
                "bench": "otel_overhead",
                "date": today(),
                "commit": commit(),
                "machine": machine(),
                "spans_of_one_answer_us": alone_us,
                "requests_per_arm": len(samples["on"]),
                "block": args.block,
                "off_arm": "no tracing, no metrics" if args.with_metrics else "no tracing",
                "off_ms": off_s,
                "on_ms": on_s,
                "added_ms": {q: round(on_s[q] - off_s[q], 3) for q in on_s},
                "spans_exported": exported,
                "spans_dropped": dropped,
                "spans_received_by_sink": received,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

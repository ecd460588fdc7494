"""OpenTelemetry export (issue 12): the API over a real gateway (a ``FaultServer`` deployment on
127.0.0.1) exports its spans over OTLP/HTTP to an ``OtlpSink`` on 127.0.0.1, read back decoded:
the root span under the caller's ``traceparent``, the retrieval with its documents, the
embedding, the gate/pack step, one GenAI/OpenInference LLM span per gateway attempt with usage
and cost, the ``traceparent`` sent on to the provider; the CLI's ``ask`` has a root span too (an
evaluation case's: ``tests/evaluation/test_harness.py``). A collector that is down (a closed port, a 503) costs the requests
nothing: they succeed fast, and the lost spans are counted. Tracing off imports no SDK."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corpus import COLLECTION, ON_TOPIC, TEST_GATE, write_corpus
from ragkeel.api.app import create_app
from ragkeel.container import Container
from ragkeel.errors import ConfigError
from ragkeel.observability import names
from ragkeel.observability.otel import OtelTracer
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer
from ragkeel.testing.otlp_sink import OtlpSink, SinkSpan

REPLY = "Rotate every API key every ninety days [1]."
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER = f"00-{CALLER_TRACE}-b7ad6b7169203331-01"


@pytest.fixture
def provider() -> Iterator[FaultServer]:
    with FaultServer(seed=1) as server:
        server.set(reply=REPLY)
        yield server


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as s:
        yield s


def _container(home: Path, provider_url: str, endpoint: str, **otlp: Any) -> Container:
    settings = load_settings(
        home=home,
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
        generation={"gate_threshold": TEST_GATE, "provider": "openai"},
        gateway={
            "deployments": [{"name": "d0", "model": "gpt-4o-mini", "base_url": provider_url}],
            "retry": {"max_retries": 0},
        },
        observability={"otlp": {"endpoint": endpoint, "timeout_s": 1.0, **otlp}},
        cache={"enabled": False},  # every request makes its model call and spans (issue 14)
    )
    container = Container(settings)
    corpus = write_corpus(home.parent / "docs")
    assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
    return container


def _one(sink: OtlpSink, name: str) -> SinkSpan:
    spans = sink.named(name)
    assert len(spans) == 1, [s.name for s in sink.spans]
    return spans[0]


def test_an_api_answer_exports_its_spans_in_the_genai_and_openinference_conventions(
    tmp_path: Path, provider: FaultServer, sink: OtlpSink
) -> None:
    container = _container(tmp_path / "home", provider.base_url, sink.endpoint)
    with TestClient(create_app(container)) as client:
        r = client.post(
            "/v1/query",
            json={"question": ON_TOPIC, "collection": COLLECTION},
            headers={"traceparent": CALLER},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert container.tracer.flush(5)
        stored = container.traces.get(body["trace_id"])
    assert body["mode"] == "generative"

    root = _one(sink, "POST /v1/query")
    assert root.trace_id == CALLER_TRACE and root.parent_span_id == "b7ad6b7169203331"
    assert root.kind == 2  # server
    attrs = root.attributes
    assert attrs[names.TRACE_ID] == body["trace_id"]
    assert attrs[names.ROUTE] == "/v1/query"  # the trace store's route of the request
    assert attrs[names.OUTCOME] == "answered" and attrs[names.ANSWER_GROUNDED] is True
    assert attrs[names.OI_SPAN_KIND] == "CHAIN" and attrs[names.INPUT_VALUE] == ON_TOPIC
    assert attrs[names.HTTP_RESPONSE_STATUS_CODE] == 200
    assert attrs[names.USAGE_COST] == pytest.approx(body["cost"]) and body["cost"] > 0
    assert stored is not None and stored.tenant and attrs[names.TENANT] == stored.tenant
    assert not any(k.startswith("gen_ai.") for k in attrs)  # usage is counted on the LLM span
    assert root.resource[names.SERVICE_NAME] == "ragkeel"
    assert root.resource[names.OI_PROJECT_NAME] == "ragkeel"

    retrieve = _one(sink, "ragkeel.retrieve")
    assert retrieve.parent_span_id == root.span_id and retrieve.trace_id == CALLER_TRACE
    docs = retrieve.attributes
    assert docs[names.OI_SPAN_KIND] == "RETRIEVER"
    hits = docs[names.RETRIEVAL_HITS]
    assert hits >= 1
    first = f"{names.RETRIEVAL_DOCUMENTS}.0."
    ids = {docs[f"{names.RETRIEVAL_DOCUMENTS}.{i}.{names.DOCUMENT_ID}"] for i in range(hits)}
    assert {c["chunk_id"] for c in body["citations"]} <= ids and body["citations"]
    assert isinstance(docs[first + names.DOCUMENT_SCORE], float)
    assert "ninety days" in " ".join(
        str(docs[f"{names.RETRIEVAL_DOCUMENTS}.{i}.{names.DOCUMENT_CONTENT}"]) for i in range(hits)
    )
    embed = _one(sink, "ragkeel.embed")
    assert embed.parent_span_id == retrieve.span_id
    assert embed.attributes[names.OI_SPAN_KIND] == "EMBEDDING"
    pack = _one(sink, "ragkeel.pack")
    assert pack.parent_span_id == root.span_id and pack.attributes[names.GATE_PASSED] is True
    assert retrieve.start_ns <= retrieve.end_ns <= pack.start_ns <= pack.end_ns

    llm = _one(sink, "chat gpt-4o-mini")
    assert llm.parent_span_id == root.span_id and llm.kind == 3  # client
    a = llm.attributes
    assert a[names.OI_SPAN_KIND] == "LLM"
    assert a[names.GEN_AI_OPERATION_NAME] == "chat"
    assert a[names.GEN_AI_REQUEST_MODEL] == a[names.LLM_MODEL_NAME] == "gpt-4o-mini"
    assert a[names.GEN_AI_PROVIDER_NAME] == "openai"
    assert a[names.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
    usage = body["usage"]
    assert a[names.GEN_AI_USAGE_INPUT_TOKENS] == a[names.LLM_TOKEN_COUNT_PROMPT] > 0
    assert a[names.GEN_AI_USAGE_OUTPUT_TOKENS] == a[names.LLM_TOKEN_COUNT_COMPLETION] > 0
    assert a[names.LLM_TOKEN_COUNT_TOTAL] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert a[names.USAGE_COST] == pytest.approx(body["cost"])
    assert a[names.OUTPUT_VALUE] == REPLY
    assert a[f"{names.LLM_INPUT_MESSAGES}.0.{names.MESSAGE_ROLE}"] == "system"

    # the system prompt's canary never leaves the process (the container's scrub)
    system = a[f"{names.LLM_INPUT_MESSAGES}.0.{names.MESSAGE_CONTENT}"]
    assert "RGK-CANARY-****" in system
    assert not any(re.search(r"RGK-CANARY-[0-9a-f]", json.dumps(s.attributes)) for s in sink.spans)

    # the provider was called with the attempt span as the parent
    assert provider.traceparents == [f"00-{CALLER_TRACE}-{llm.span_id}-01"]


def test_without_a_traceparent_each_request_starts_its_own_trace(
    tmp_path: Path, provider: FaultServer, sink: OtlpSink
) -> None:
    container = _container(tmp_path / "home", provider.base_url, sink.endpoint)
    with TestClient(create_app(container)) as client:
        ids = []
        for header in ({}, {"traceparent": "00-not-a-valid-header-01"}):
            r = client.post(
                "/v1/query", json={"question": ON_TOPIC, "collection": COLLECTION}, headers=header
            )
            assert r.status_code == 200
            assert r.headers["X-Trace-Id"] == r.json()["trace_id"]
            ids.append(r.json()["trace_id"])
        assert client.get("/healthz").status_code == 200  # probes are not traced
        assert container.tracer.flush(5)
    roots = sink.named("POST /v1/query")
    assert len(roots) == 2 and roots[0].trace_id != roots[1].trace_id
    assert all(r.parent_span_id == "" for r in roots)
    # a new trace takes the request's id: the one the trace store and X-Trace-Id show
    assert sorted(r.trace_id for r in roots) == sorted(ids)
    assert all(r.attributes[names.TRACE_ID] == r.trace_id for r in roots)
    assert not sink.named("GET /healthz")
    llm_traces = {s.trace_id for s in sink.named("chat gpt-4o-mini")}
    assert llm_traces == {r.trace_id for r in roots}


def test_capture_content_off_leaves_the_texts_out(
    tmp_path: Path, provider: FaultServer, sink: OtlpSink
) -> None:
    container = _container(
        tmp_path / "home", provider.base_url, sink.endpoint, capture_content=False
    )
    with TestClient(create_app(container)) as client:
        client.post("/v1/query", json={"question": ON_TOPIC, "collection": COLLECTION})
        assert container.tracer.flush(5)
    texts = [ON_TOPIC, REPLY, "ninety days"]
    for span in sink.spans:
        values = json.dumps(span.attributes)
        assert not any(t in values for t in texts), span.name
    retrieve = _one(sink, "ragkeel.retrieve").attributes
    assert f"{names.RETRIEVAL_DOCUMENTS}.0.{names.DOCUMENT_ID}" in retrieve


def test_an_answered_query_records_one_trace_and_one_root_span(
    tmp_path: Path, provider: FaultServer, sink: OtlpSink
) -> None:
    """Over a real gateway (where closing the answer thread after its answer used to record a
    second, CANCELLED trace for about half the queries): one trace per query, and one root span
    carrying its id."""
    container = _container(tmp_path / "home", provider.base_url, sink.endpoint)
    with TestClient(create_app(container)) as client:
        ids = []
        for _ in range(6):
            r = client.post("/v1/query", json={"question": ON_TOPIC, "collection": COLLECTION})
            assert r.status_code == 200
            ids.append(r.json()["trace_id"])
        assert container.tracer.flush(5)
        recent = container.traces.recent(limit=20)
    assert [t.id for t in recent] == ids[::-1]
    assert {t.outcome for t in recent} == {"answered"}
    roots = sink.named("POST /v1/query")
    assert sorted(r.attributes[names.TRACE_ID] for r in roots) == sorted(ids)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


EXPORT_TIMEOUT_S = 3.0  # how long one failing export keeps retrying, in the background


@pytest.mark.parametrize("down", ["closed_port", "503"])
def test_a_collector_that_is_down_costs_requests_nothing_and_lost_spans_are_counted(
    tmp_path: Path, provider: FaultServer, down: str
) -> None:
    with OtlpSink(status=503) as failing:
        closed = f"http://127.0.0.1:{_closed_port()}/v1/traces"
        endpoint = closed if down == "closed_port" else failing.endpoint
        container = _container(
            tmp_path / "home", provider.base_url, endpoint, timeout_s=EXPORT_TIMEOUT_S
        )
        query = {"question": ON_TOPIC, "collection": COLLECTION}
        with TestClient(create_app(container)) as client:
            assert client.post("/v1/query", json=query).status_code == 200  # warm (tokenizer)
            tracer = container.tracer
            assert isinstance(tracer, OtelTracer)
            # an export starts now and keeps failing (retrying with backoff) for EXPORT_TIMEOUT_S
            exporting = threading.Thread(target=tracer.flush, args=(EXPORT_TIMEOUT_S * 3,))
            exporting.start()
            time.sleep(0.2)
            took = []
            for _ in range(5):  # answered while the export is stuck
                start = time.perf_counter()
                r = client.post("/v1/query", json=query)
                took.append(time.perf_counter() - start)
                assert r.status_code == 200 and r.json()["mode"] == "generative"
            exporting.join(EXPORT_TIMEOUT_S * 3)
            assert not exporting.is_alive()
            tracer.flush(EXPORT_TIMEOUT_S * 3)  # the five requests' spans fail the same way
            assert tracer.dropped >= 6 * 5  # root, retrieve, embed, pack, chat per request
            assert tracer.exported == 0
        # no request waited for the export (which took EXPORT_TIMEOUT_S each time)
        assert max(took) < EXPORT_TIMEOUT_S / 2, took
        if down == "503":
            assert failing.posts >= 2 and not failing.spans


def test_a_full_queue_drops_spans_and_counts_them(
    tmp_path: Path, provider: FaultServer, sink: OtlpSink
) -> None:
    container = _container(tmp_path / "home", provider.base_url, sink.endpoint, max_queue_size=3)
    with TestClient(create_app(container)) as client:
        r = client.post("/v1/query", json={"question": ON_TOPIC, "collection": COLLECTION})
        assert r.status_code == 200
        tracer = container.tracer
        assert isinstance(tracer, OtelTracer)
        tracer.flush(5)
        assert tracer.dropped + len(sink.spans) >= 5  # every span exported or counted lost
        assert tracer.dropped >= 1


def test_the_cli_ask_has_a_root_span_and_the_stage_spans_under_it(
    tmp_path: Path, provider: FaultServer, sink: OtlpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ragkeel.cli.main import app as cli

    home = tmp_path / "home"
    _container(home, provider.base_url, sink.endpoint).close()
    monkeypatch.setenv("RAGKEEL_HOME", str(home))
    monkeypatch.setenv("RAGKEEL_EMBEDDING__PROVIDER", "hashing")
    monkeypatch.setenv("RAGKEEL_EMBEDDING__HASHING_DIMENSION", "256")
    monkeypatch.setenv("RAGKEEL_EMBEDDING__CACHE", "false")
    monkeypatch.setenv("RAGKEEL_GENERATION__MODE", "extractive")
    monkeypatch.setenv("RAGKEEL_GENERATION__GATE_THRESHOLD", str(TEST_GATE))
    monkeypatch.setenv("RAGKEEL_OBSERVABILITY__OTLP__ENDPOINT", sink.endpoint)
    result = CliRunner().invoke(cli, ["ask", ON_TOPIC, "--collection", COLLECTION, "--json"])
    assert result.exit_code == 0, result.output
    trace_id = json.loads(result.output)["trace_id"]
    root = _one(sink, names.SPAN_CLI_ASK)  # the container's close flushed it
    assert root.attributes[names.TRACE_ID] == trace_id
    assert root.attributes[names.ROUTE] == names.ROUTE_CLI_ASK
    assert _one(sink, "ragkeel.retrieve").parent_span_id == root.span_id
    assert not sink.named("chat gpt-4o-mini")  # extractive: no model call


def test_tracing_off_never_imports_the_sdk(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from ragkeel.container import Container\n"
        "from ragkeel.settings import load_settings\n"
        "from ragkeel.api.app import create_app\n"
        f"c = Container(load_settings(home={str(tmp_path)!r}))\n"
        "create_app(c); c.tracer; c.close()\n"
        "assert type(c.tracer).__name__ == 'NullTracer'\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.sdk')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_otlp_settings_mask_the_headers_and_want_an_http_endpoint(tmp_path: Path) -> None:
    secret = "Basic cGstbGYtMTIzOnNrLWxmLTQ1Ng=="
    settings = load_settings(
        home=tmp_path,
        observability={
            "otlp": {
                "endpoint": "https://cloud.langfuse.com/api/public/otel/v1/traces",
                "headers": {"Authorization": secret},
            }
        },
    )
    shown = json.dumps(settings.masked())
    assert secret not in shown and "Authorization" in shown
    with pytest.raises(ConfigError, match="otlp"):
        load_settings(home=tmp_path, observability={"otlp": {"endpoint": "127.0.0.1:4318"}})


def test_sampling_follows_the_ratio_and_a_sampled_caller(
    tmp_path: Path, provider: FaultServer, sink: OtlpSink
) -> None:
    """sample_ratio 0: a new trace is not recorded, but its traceparent still goes to the
    provider (flags 00); a caller's sampled traceparent is followed whatever the ratio."""
    container = _container(tmp_path / "home", provider.base_url, sink.endpoint, sample_ratio=0.0)
    query = {"question": ON_TOPIC, "collection": COLLECTION}
    with TestClient(create_app(container)) as client:
        assert client.post("/v1/query", json=query).status_code == 200
        assert container.tracer.flush(5)
        assert sink.spans == []
        unsampled = provider.traceparents[-1]
        assert unsampled is not None and unsampled.endswith("-00")
        r = client.post("/v1/query", json=query, headers={"traceparent": CALLER})
        assert r.status_code == 200
        assert container.tracer.flush(5)
    assert {s.trace_id for s in sink.spans} == {CALLER_TRACE} and len(sink.spans) == 5
    assert provider.traceparents[-1] is not None
    assert provider.traceparents[-1].startswith(f"00-{CALLER_TRACE}-")


def test_a_down_deployment_shows_failed_llm_spans_then_the_open_breaker(
    tmp_path: Path, sink: OtlpSink
) -> None:
    """The primary is down: its failed attempts are LLM spans marked failed, the backup's
    attempt answers; once the breaker is open, the refusal (no call) is an event on the root
    span, beside the gateway's decisions."""
    with FaultServer(seed=5) as primary, FaultServer(seed=6) as backup:
        primary.set(down=True)
        backup.set(reply=REPLY)
        settings = load_settings(
            home=tmp_path / "home",
            embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
            ingestion={"chunk_tokens": 64},
            generation={"gate_threshold": TEST_GATE, "provider": "openai"},
            cache={"enabled": False},  # each request through the gateway (issue 14)
            gateway={
                "deployments": [
                    {"name": "d0", "model": "gpt-4o-mini", "base_url": primary.base_url},
                    {"name": "d1", "model": "gpt-4o", "base_url": backup.base_url},
                ],
                "retry": {"max_retries": 0},
                "breaker": {"consecutive_failures": 2, "open_s": 60, "max_open_s": 60},
            },
            observability={"otlp": {"endpoint": sink.endpoint}},
        )
        container = Container(settings)
        corpus = write_corpus(tmp_path / "docs")
        assert container.pipeline.ingest([str(corpus)], COLLECTION).exit_code == 0
        query = {"question": ON_TOPIC, "collection": COLLECTION}
        with TestClient(create_app(container)) as client:
            served = [client.post("/v1/query", json=query).json()["served_by"] for _ in range(3)]
            assert container.tracer.flush(5)
    assert served == ["d1", "d1", "d1"]
    failed = sink.named("chat gpt-4o-mini")
    assert len(failed) == 2  # two calls, then the breaker opened
    assert all(s.status_code == 2 and s.attributes[names.ERROR_TYPE] for s in failed)
    assert all(s.attributes[names.GATEWAY_OUTCOME] == "error" for s in failed)
    assert len(sink.named("chat gpt-4o")) == 3
    last = max(sink.named("POST /v1/query"), key=lambda s: s.start_ns)
    rejected = [a for n, a in last.events if n == names.GATEWAY_REJECTED_EVENT]
    assert rejected == [{names.GATEWAY_DEPLOYMENT: "d0", names.ERROR_TYPE: "CIRCUIT_OPEN"}]
    assert last.attributes[names.GATEWAY_RUNG] == 1
    decisions = [a for n, a in last.events if n == names.GATEWAY_DECISION_EVENT]
    assert decisions and all(a[names.DECISION_REASON] for a in decisions)

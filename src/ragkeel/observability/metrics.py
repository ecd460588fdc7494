"""Prometheus metrics (``prometheus-client``), served by ``GET /metrics``; every series is
named ``ragkeel_*``.

Recorded, not sampled: the API records a finished request from its ``Trace`` at the one place
traces are recorded (``api/tracing.py`` → ``Metrics.observe_trace``), so the metrics and the
trace store never disagree about what a request did; the few refusals that never produce a
trace are counted where they are decided (admission: ``api/admission.py``, ``api/state.py``;
authentication: ``api/auth.py``).

========================================  =========  ============================================
series                                    type       labels
========================================  =========  ============================================
ragkeel_requests_total                    counter    route, outcome (answered, cannot_answer,
                                                     degraded, error)
ragkeel_stage_duration_seconds            histogram  route, stage (retrieve, rerank, first_token,
                                                     total)
ragkeel_tokens_total                      counter    model, tenant, direction (input, output)
ragkeel_cost_usd_total                    counter    model, tenant
ragkeel_gateway_attempts_total            counter    deployment, outcome (ok, error, rejected,
                                                     interrupted); the reranker's attempts too
                                                     (deployment ``rerank:<model>``)
ragkeel_retrieval_top_score               histogram  route, signal (dense: the best cosine the
                                                     answer gate saw)
ragkeel_answer_grounded                   histogram  route; one observation per answer that is
                                                     not a refusal, 1 grounded / 0 not: the
                                                     grounded share is ``_sum / _count``
ragkeel_admission_rejections_total        counter    reason (in_flight, tenant_limit, streams,
                                                     model_busy, shutting_down)
ragkeel_auth_failures_total               counter    code (UNAUTHENTICATED, FORBIDDEN, ...)
ragkeel_embedding_cache_lookups_total     counter    result (hit, miss): texts the embedding
                                                     cache was asked for (``CachingEmbedder``)
ragkeel_shared_state_errors_total         counter    use (limits, accounts, breakers, cache): ops
                                                     that could not use Redis (``redis.url``) and
                                                     took their fallback (``shared_state.py``)
ragkeel_answer_cache_total                counter    decision (hit, miss, bypass), kind (exact,
                                                     semantic, none): the answer cache's decision
                                                     for each answer (issue 14; from the trace)
ragkeel_rerank_total                      counter    decision (applied, skipped, failed), reason
                                                     (low_margin, disagreement, low_top_score,
                                                     always, confident, few_hits): the
                                                     conditional reranking (issue 15)
ragkeel_breaker_state                     gauge      deployment, state (closed, open, half_open,
                                                     cooling): 1 for the current state; read at
                                                     scrape time
ragkeel_index_documents / _chunks         gauge      tenant, collection; read at scrape time
========================================  =========  ============================================

Scrape-time series come from ``ScrapeGauge`` collectors over a reader the container wires
(``Container.metrics``: the gateway's breakers, the store's collections); more can be added
with ``Metrics.add_collector`` (the alert monitor's ``ragkeel_alert_firing``, added by ``Container.start_monitor``). A reader that
fails is logged and its series left out of that scrape: a scrape never fails because one
source is down.

Multiprocess mode (several worker processes behind one port): set ``PROMETHEUS_MULTIPROC_DIR``
to an empty, writable directory in the environment *before* the processes start (the client
library picks its value store when it is imported). Each process then writes its counters and
histograms to files there, and a scrape answered by any process merges every process's files
(``MultiProcessCollector``); the scrape-time gauges read shared stores, so any process gives the
same answer. Clear the directory between runs of the server, as the client library says.
Outside multiprocess mode each ``Metrics`` has a registry of its own (no global state: two apps
in one process do not share series).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from ragkeel.observability import names
from ragkeel.observability.trace import Trace

log = logging.getLogger(__name__)

PREFIX: Final = "ragkeel_"
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
NONE: Final = "none"  # the label value of a missing model or tenant
TIMED_STAGES: Final = (
    names.STAGE_RETRIEVE,
    names.STAGE_RERANK,  # only when the reranker was called (issue 15)
    names.STAGE_FIRST_TOKEN,
    names.STAGE_TOTAL,
)
# seconds: 5 ms .. 2 min, denser where answers usually land (0.1 s .. 10 s)
LATENCY_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
)
SCORE_BUCKETS: Final = tuple(round(0.05 * i, 2) for i in range(1, 21))  # cosine 0.05 .. 1.0
SHARE_BUCKETS: Final = (0.5, 1.0)  # an observation is 0 or 1

LabelValues = tuple[str, ...]
Reading = Iterable[tuple[LabelValues, float]]


class Collector(Protocol):
    """What ``prometheus_client`` calls on every scrape."""

    def collect(self) -> Iterable[Metric]: ...


class ScrapeGauge:
    """A gauge whose samples are read when scraped: ``read()`` yields ``(label values,
    value)``. A reader that raises is logged and leaves this gauge out of the scrape."""

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], read: Callable[[], Reading]
    ) -> None:
        if not name.startswith(PREFIX):
            raise ValueError(f"metric {name!r} must be named {PREFIX}*")
        self.name = name
        self.documentation = documentation
        self.labels = list(labels)
        self.read = read

    def describe(self) -> Iterable[Metric]:
        """The family without samples: the registry learns the name without reading."""
        return [GaugeMetricFamily(self.name, self.documentation, labels=self.labels)]

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        try:
            for values, value in self.read():
                family.add_metric(list(values), value)
        except Exception:  # a store that cannot be read: no samples this scrape, never a 500
            log.warning("could not read %s for /metrics", self.name, exc_info=True)
            return []
        return [family]


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when set (multiprocess mode), else None."""
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """The service's metrics: record with ``observe_trace`` and the ``*_rejected``/``*_failed``
    counters, serve with ``exposition()``. Thread-safe (the client library locks each value)."""

    def __init__(self, *, enabled: bool = True) -> None:
        """``enabled=False`` (``observability.metrics: off``): nothing is recorded and a
        scrape is empty; the calls stay cheap no-ops for the code that records."""
        self.enabled = enabled
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
        self.multiprocess = multiprocess_dir() is not None
        # the registry the recorded series live in; in multiprocess mode they live in files and
        # a scrape builds a fresh registry over them (``exposition``)
        self._own = CollectorRegistry()
        owned = None if self.multiprocess else self._own
        self._collectors: list[Collector] = []
        self._lock = threading.Lock()
        self._cache_seen = (0, 0)
        self._cache_read: Callable[[], tuple[int, int] | None] | None = None

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=owned)

        def histogram(name: str, doc: str, buckets: Sequence[float], *labels: str) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=owned)

        self.requests = counter(
            "ragkeel_requests", "Answer requests by route and outcome.", "route", "outcome"
        )
        self.stage_seconds = histogram(
            "ragkeel_stage_duration_seconds",
            "Latency of a request's stages (retrieve, first token, total), in seconds.",
            LATENCY_BUCKETS,
            "route",
            "stage",
        )
        self.tokens = counter(
            "ragkeel_tokens",
            "Model tokens by model, tenant and direction (input: prompt, output: answer).",
            "model",
            "tenant",
            "direction",
        )
        self.cost = counter(
            "ragkeel_cost_usd", "Model cost in US dollars by model and tenant.", "model", "tenant"
        )
        self.attempts = counter(
            "ragkeel_gateway_attempts",
            "Gateway attempts at a deployment by outcome (rejected: not called, e.g. breaker "
            "open).",
            "deployment",
            "outcome",
        )
        self.top_score = histogram(
            "ragkeel_retrieval_top_score",
            "The best retrieval score the answer gate saw (dense: cosine).",
            SCORE_BUCKETS,
            "route",
            "signal",
        )
        self.grounded = histogram(
            "ragkeel_answer_grounded",
            "1 per grounded answer, 0 per ungrounded one (refusals and errors left out): "
            "the grounded share is _sum / _count.",
            SHARE_BUCKETS,
            "route",
        )
        self.feedback = counter(
            "ragkeel_feedback",
            "Ratings of answers (POST /v1/feedback), by rating: up, down or 1-5.",
            "rating",
        )
        self.admission = counter(
            "ragkeel_admission_rejections",
            "Answer requests refused before any work, by reason.",
            "reason",
        )
        self.auth = counter(
            "ragkeel_auth_failures",
            "Requests refused by authentication or authorisation, by error code.",
            "code",
        )
        self.cache = counter(
            "ragkeel_embedding_cache_lookups",
            "Texts looked up in the embedding cache, by result (hit, miss).",
            "result",
        )
        self.shared_state = counter(
            "ragkeel_shared_state_errors",
            "Operations that could not use the shared state (Redis) and took their fallback, "
            "by use (limits: admitted; accounts: paid calls refused; breakers: in-process; "
            "cache: a miss).",
            "use",
        )
        self.answer_cache = counter(
            "ragkeel_answer_cache",
            "Answer cache decisions (issue 14) by decision (hit, miss, bypass) and kind "
            "(exact, semantic; none for a miss or bypass).",
            "decision",
            "kind",
        )
        self.rerank = counter(
            "ragkeel_rerank",
            "Conditional reranking (issue 15) by decision (applied, skipped, failed: the fused "
            "order kept) and the gate's reason.",
            "decision",
            "reason",
        )

    # -- recording --------------------------------------------------------------------------

    def observe_trace(self, trace: Trace) -> None:
        """Record one finished request from its trace."""
        if not self.enabled:
            return
        self._sync_embedding_cache()
        route = trace.route
        self.requests.labels(route, trace.outcome).inc()
        for stage in TIMED_STAGES:
            ms = trace.latency_ms.get(stage)
            if ms is not None:
                self.stage_seconds.labels(route, stage).observe(ms / 1000.0)
        model = trace.model or NONE
        tenant = trace.tenant or NONE
        if trace.input_tokens:
            self.tokens.labels(model, tenant, "input").inc(trace.input_tokens)
        if trace.output_tokens:
            self.tokens.labels(model, tenant, "output").inc(trace.output_tokens)
        if trace.cost > 0:
            self.cost.labels(model, tenant).inc(trace.cost)
        gateway = trace.gateway or {}
        rerank = gateway.get("rerank") or {}
        rerank_calls = rerank.get("calls") or {}
        for attempt in [*(gateway.get("attempts") or ()), *(rerank_calls.get("attempts") or ())]:
            if isinstance(attempt, dict):
                deployment = str(attempt.get("deployment") or NONE)
                self.attempts.labels(deployment, str(attempt.get("outcome") or NONE)).inc()
        if rerank.get("decision"):  # the conditional reranking (issue 15)
            self.rerank.labels(str(rerank["decision"]), str(rerank.get("reason") or NONE)).inc()
        gate = trace.gate
        if gate is not None and gate.top_dense is not None:
            self.top_score.labels(route, "dense").observe(gate.top_dense)
        if trace.outcome in ("answered", "degraded") and trace.grounded is not None:
            self.grounded.labels(route).observe(1.0 if trace.grounded else 0.0)
        cache = (trace.gateway or {}).get("cache")
        if isinstance(cache, dict) and cache.get("decision"):
            self.answer_cache.labels(str(cache["decision"]), str(cache.get("kind") or NONE)).inc()

    def admission_rejected(self, reason: str) -> None:
        if self.enabled:
            self.admission.labels(reason).inc()

    def auth_failed(self, code: str) -> None:
        if self.enabled:
            self.auth.labels(code).inc()

    def shared_state_failed(self, use: str) -> None:
        if self.enabled:
            self.shared_state.labels(use).inc()

    def watch_embedding_cache(self, read: Callable[[], tuple[int, int] | None]) -> None:
        """Where the embedding cache's running totals of hits and misses come from (None: no
        cache, or not built yet); read when a trace is observed and when scraped."""
        self._cache_read = read

    def _sync_embedding_cache(self) -> None:
        counts = self._cache_read() if self._cache_read is not None and self.enabled else None
        if counts is not None:
            self.embedding_cache(*counts)

    def embedding_cache(self, hits: int, misses: int) -> None:
        """The embedding cache's running totals (``CachingEmbedder.hits``/``misses``): what
        grew since the last call is counted."""
        with self._lock:
            seen_hits, seen_misses = self._cache_seen
            self._cache_seen = (max(hits, seen_hits), max(misses, seen_misses))
        if hits > seen_hits:
            self.cache.labels("hit").inc(hits - seen_hits)
        if misses > seen_misses:
            self.cache.labels("miss").inc(misses - seen_misses)

    # -- scraping ---------------------------------------------------------------------------

    def add_collector(self, collector: Collector) -> None:
        """Add series read at scrape time (a ``ScrapeGauge``, or any ``prometheus_client``
        collector); its names must start with ``ragkeel_``."""
        with self._lock:
            self._collectors.append(collector)
        if not self.multiprocess:
            self._own.register(collector)

    def registry(self) -> CollectorRegistry:
        """What a scrape reads: this process's registry, or in multiprocess mode a fresh one
        over every process's files plus the scrape-time collectors."""
        if not self.enabled:
            return CollectorRegistry()  # nothing recorded, nothing read
        if not self.multiprocess:
            return self._own
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
        with self._lock:
            collectors = list(self._collectors)
        for collector in collectors:
            registry.register(collector)
        return registry

    def exposition(self) -> tuple[bytes, str]:
        """The body and content type of ``GET /metrics`` (Prometheus text format 0.0.4)."""
        self._sync_embedding_cache()
        return generate_latest(self.registry()), CONTENT_TYPE

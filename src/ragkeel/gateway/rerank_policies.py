"""The gateway's policies around a ``Reranker`` (issue 15): the same retry loop, breaker and
metering as a chat deployment's, each a wrapper implementing the ``Reranker`` protocol.
``stack.build_reranker`` composes them in the chat stack's order (outermost first)::

    RetryingReranker        retry.RetryLoop: full-jitter backoff, Retry-After, the deadline,
    │                       a retry budget (only retryable errors: 429, 5xx, timeouts, resets)
    └── CircuitBreakerReranker   breaker.Breaker: open after repeated failures, half-open probe
        └── MeteredReranker      one Attempt in the call log and one span per provider call
            └── RemoteReranker   the /rerank HTTP shapes (providers/rerank_http.py)

Each is the chat wrapper's generic part (``RetryingDeployment``, ``CircuitBreakerDeployment``,
``MeteredDeployment``: the loop, the breaker, the span and the ``Attempt``) with ``rerank``
added, so a reranker is retried, broken and metered by the same code as a chat model.

What the policies decide lands in the call log being recorded (``calllog.recording``): the
retrieval records each rerank call into a log of its own and keeps it with the rerank outcome
in the trace (``retrieval/rerank.py``), apart from the answer's model calls. There is no
fallback reranker: when the stack raises, the retrieval keeps the fused order.
"""

from __future__ import annotations

from dataclasses import replace

from ragkeel.clock import SYSTEM_CLOCK, Clock
from ragkeel.gateway.breaker import CircuitBreakerDeployment
from ragkeel.gateway.metering import MeteredDeployment
from ragkeel.gateway.rerank import Reranker, RerankRequest, RerankResponse
from ragkeel.gateway.retry import CallLimits, RetryingDeployment
from ragkeel.observability import genai, names
from ragkeel.observability.tracing import Span


class RetryingReranker(RetryingDeployment[Reranker]):
    """Retries one reranker deployment's retryable failures (``retry.py``'s loop)."""

    def rerank(self, request: RerankRequest) -> RerankResponse:
        limits = CallLimits(request.timeout_s, request.deadline)
        return self._loop.run(limits, lambda t: self.inner.rerank(replace(request, timeout_s=t)))


class CircuitBreakerReranker(CircuitBreakerDeployment[Reranker]):
    """A reranker deployment behind its circuit breaker (``breaker.py``'s ``Breaker``)."""

    def rerank(self, request: RerankRequest) -> RerankResponse:
        return self.breaker.call(lambda: self.inner.rerank(request))


class MeteredReranker(MeteredDeployment[Reranker]):
    """Records every call that reaches the reranker: an ``Attempt`` (outcome, error code and
    status, latency) in the current call log, and a ``rerank {deployment}`` span under the
    current one (OpenInference RERANKER; the provider sends its ``traceparent``)."""

    def __init__(self, inner: Reranker, *, provider: str, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(inner, clock=clock, provider=provider)

    def rerank(self, request: RerankRequest) -> RerankResponse:
        return self._metered(lambda: self._span(request), lambda: self.inner.rerank(request))

    def _span(self, request: RerankRequest) -> Span:
        return self._child(
            f"{names.SPAN_RERANK} {self.name}",
            lambda parent: genai.rerank_attributes(
                deployment=self.name,
                provider=self.provider,
                query=request.query,
                documents=len(request.documents),
                top_n=request.top_n,
                content=parent.capture_content,
            ),
        )

"""Every ``/v1/query`` and ``/v1/chat/completions`` request writes one trace; this is the one
place the API does it, and where the request is counted in the metrics
(``observability/metrics.py``: ``Metrics.observe_trace``) and logged (one ``answer <outcome>``
line with the outcome, model, latency, tokens, cost and codes; the question only with
``observability.log_questions``); the request's root span gets the trace's facts
(``observability/genai.py``). The trace takes the request's id (``observability/context.py``),
assigned when the request started."""

from __future__ import annotations

import logging

from ragkeel.container import Container
from ragkeel.generation.answer import Answer
from ragkeel.generation.tracing import trace_from_answer, trace_from_error
from ragkeel.observability import genai
from ragkeel.observability.trace import Trace

log = logging.getLogger("ragkeel.api")


def record_trace(
    container: Container,
    route: str,
    *,
    answer: Answer | None = None,
    question: str = "",
    error: BaseException | None = None,
    latency_ms: float = 0.0,
    tenant: str | None = None,
) -> str | None:
    """Record the trace of ``answer``, or of the request for ``question`` that failed with
    ``error`` (made by ``tenant``: the caller's, so that only it reads the trace back); the
    trace id (``None`` when tracing is off). Never raises: a trace that cannot be built is
    logged, and the request goes on."""
    try:
        if answer is not None:
            keep = container.keep_prompt_text
            trace = trace_from_answer(answer, route=route, keep_prompt_text=keep)
        else:
            failure = error or RuntimeError("unknown failure")
            trace = trace_from_error(
                question, failure, route=route, latency_ms=latency_ms, tenant=tenant
            )
        genai.annotate_request(trace)  # the request's root span, when traced
    except Exception:  # guards building the trace and its span (the store itself never raises)
        log.warning("could not record the trace of a %s request", route, exc_info=True)
        return None
    try:
        container.metrics.observe_trace(trace)
    except Exception:  # metrics never fail a request either
        log.warning("could not count a %s request in the metrics", route, exc_info=True)
    log.info("answer %s", trace.outcome, extra=_log_fields(trace, container.log_questions))
    return container.traces.record(trace)


def _log_fields(trace: Trace, with_question: bool) -> dict[str, object]:
    """The answer's log line fields (``observability/logs.py``); the question text only with
    ``observability.log_questions``."""
    fields: dict[str, object] = {
        "outcome": trace.outcome,
        "model": trace.model,
        "total_ms": trace.total_ms,
        "input_tokens": trace.input_tokens,
        "output_tokens": trace.output_tokens,
        "cost": trace.cost,
        "error_code": trace.error_code,
        "degraded_reason": trace.degraded_reason,
    }
    if with_question:
        fields["question"] = trace.question
    return fields

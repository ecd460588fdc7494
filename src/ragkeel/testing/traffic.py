"""Synthetic service traffic as realistic ``Trace`` records, for the monitor's tests and
``bench/monitor_alarms.py``: what a stream of ``/v1/query`` requests leaves in the trace store.

A ``TrafficProfile`` says what the service is like: the top retrieval scores its queries get
(a pool resampled with replacement; the tests and the bench fill it with the real scores of
real queries against a real index), the answer gate's threshold (a query scoring below it is
"cannot answer", as in the answer flow), the shares of degraded answers and errors, the
latency (log-normal per stage), tokens and price (cost = tokens x price, as the gateway's
metering computes it), and how often an answer is grounded. ``traffic(profile, n, start, end,
rng)`` draws ``n`` traces spread evenly over ``[start, end)``; a fault is a changed profile
(``dataclasses.replace``): slower, dearer, scores from another data set.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ragkeel.observability import names
from ragkeel.observability.trace import Outcome, PromptRecord, RetrievedChunk, Trace
from ragkeel.types import Citation, GateDecision


@dataclass(frozen=True, slots=True)
class TrafficProfile:
    top_scores: tuple[float, ...]  # the best dense similarity per query (resampled)
    gate_threshold: float = 0.3  # below it: cannot_answer, no model call
    degraded: float = 0.04  # of the questions past the gate: a model failure, extractive answer
    error: float = 0.01  # of all requests: failed outright
    grounded: float = 0.9  # of generated answers
    latency_median_ms: float = 900.0  # total, generated answers; log-normal
    latency_sigma: float = 0.35
    input_tokens: int = 1_200  # mean; prompt tokens of a generated answer
    output_tokens: int = 150
    input_per_mtok: float = 0.15  # USD (gpt-4o-mini's list price)
    output_per_mtok: float = 0.60
    model: str = "gpt-4o-mini"
    tenant: str = "default"


def traffic(
    profile: TrafficProfile, n: int, *, start: float, end: float, rng: random.Random
) -> list[Trace]:
    """``n`` traces with ``created_at`` spread evenly over ``[start, end)``."""
    step = (end - start) / n if n else 0.0
    return [_trace(profile, start + i * step, rng) for i in range(n)]


def _trace(p: TrafficProfile, at: float, rng: random.Random) -> Trace:
    retrieve_ms = rng.lognormvariate(3.4, 0.3)  # ~30 ms
    if rng.random() < p.error:
        return Trace(
            route=names.ROUTE_API_QUERY,
            question=_question(rng),
            outcome="error",
            created_at=at,
            error_code="STORAGE_ERROR",
            error_message="database is locked",
            latency_ms={names.STAGE_TOTAL: round(retrieve_ms, 3)},
            tenant=p.tenant,
        )
    score = rng.choice(p.top_scores)
    hits = _hits(score, rng)
    gate = GateDecision(score >= p.gate_threshold, "dense", score, None, p.gate_threshold, None)
    base = {
        "route": names.ROUTE_API_QUERY,
        "question": _question(rng),
        "created_at": at,
        "retrieved": hits,
        "gate": gate,
        "tenant": p.tenant,
        "template_version": "answer_v3",
    }
    if not gate.passed:
        latency = {names.STAGE_RETRIEVE: retrieve_ms, names.STAGE_TOTAL: retrieve_ms + 1.0}
        return Trace(
            outcome="cannot_answer",
            mode="cannot_answer",
            latency_ms=_rounded(latency),
            output="I cannot answer that from the documents I have.",
            **base,  # type: ignore[arg-type]
        )
    if rng.random() < p.degraded:
        latency = {names.STAGE_RETRIEVE: retrieve_ms, names.STAGE_TOTAL: retrieve_ms + 8.0}
        return Trace(
            outcome="degraded",
            mode="extractive",
            model=p.model,
            grounded=True,
            latency_ms=_rounded(latency),
            output="Rotate every API key every ninety days [1].",
            citations=(_citation(hits[0]),),
            degraded_reason="MODEL_TIMEOUT",
            degraded_detail="the model did not answer in time",
            **base,  # type: ignore[arg-type]
        )
    total = rng.lognormvariate(0.0, p.latency_sigma) * p.latency_median_ms
    first = min(total * 0.4, total - 1.0)
    tokens_in = max(1, round(rng.gauss(p.input_tokens, p.input_tokens * 0.2)))
    tokens_out = max(1, round(rng.gauss(p.output_tokens, p.output_tokens * 0.3)))
    cost = (tokens_in * p.input_per_mtok + tokens_out * p.output_per_mtok) / 1e6
    latency = {
        names.STAGE_RETRIEVE: retrieve_ms,
        names.STAGE_PACK: 1.5,
        names.STAGE_FIRST_TOKEN: first,
        names.STAGE_GENERATE: total - retrieve_ms - 1.5,
        names.STAGE_TOTAL: total,
    }
    outcome: Outcome = "answered"
    return Trace(
        outcome=outcome,
        mode="generative",
        model=p.model,
        grounded=rng.random() < p.grounded,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost=cost,
        latency_ms=_rounded(latency),
        prompt=PromptRecord.of("[system] ...", tokens=tokens_in, keep_text=False),
        output="Rotate every API key every ninety days [1].",
        citations=(_citation(hits[0]),),
        gateway={"served_by": p.model, "rung": 0, "attempts": [{"deployment": p.model}]},
        **base,  # type: ignore[arg-type]
    )


def _hits(top: float, rng: random.Random) -> tuple[RetrievedChunk, ...]:
    scores = sorted((top * rng.uniform(0.7, 1.0) for _ in range(4)), reverse=True)
    dense = (top, *scores)
    return tuple(
        RetrievedChunk(
            f"c{rng.randrange(10**6)}",
            f"d{rng.randrange(10**4)}",
            1.0 - i * 0.1,
            i + 1,
            8.0 - i,
            i + 1,
            round(d, 6),
        )
        for i, d in enumerate(dense)
    )


def _citation(hit: RetrievedChunk) -> Citation:
    return Citation(1, hit.chunk_id, hit.document_id, "kb/keys.md", "API keys", None, "Rotate...")


def _question(rng: random.Random) -> str:
    return f"question {rng.randrange(10**6)}"


def _rounded(latency: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in latency.items()}

"""Conditional reranking (issue 15): send the top fused hits to a ``Reranker`` only when the
fused ranking is ambiguous, and never let the reranker's failure reach the user.

The gate (``RerankGate``) reads the confidence signals the retrieval already computed
(``confidence.py``; nothing is called to decide) and reranks when any one holds:

* ``low_margin`` — the fused top-1 minus top-2 score is below ``margin_below``: the fusion
  barely prefers its first hit;
* ``disagreement`` — (``on_disagreement``) both retrievers found something and their top hits
  are different chunks;
* ``low_top_score`` — (``top_score_below``, off by default) the fused top score is below it;
* ``always`` — every question.

Otherwise it skips (``confident``), and with fewer than two fused candidates there is nothing
to reorder (``few_hits``). The thresholds are on the fusion's own scale (the weighted fusion's
scores lie in [0, 1]); the skip rates they give on SciFact and XQuAD are in
docs/benchmarks.md ("Issue 15: conditional reranking"). With ``k = 1`` the margin is 0 (one
hit, ``Confidence``), so the gate reranks.

``ConditionalReranker.rerank`` sends the first ``candidates`` hits' texts (title and headings
included, as the indexes see them) with ``top_n``, a per-attempt ``timeout_s`` and a deadline
``deadline_s`` from now for every attempt together, through the gateway's policies
(``gateway/stack.py`` ``build_reranker``: retry, breaker, metering). The reranked hits come
first, in the reranker's order with its score (``SearchHit.rerank_score``); the candidates it
did not return and the hits past the candidates follow in fused order. Any ``ChatModelError``
(timeout, 5xx after the retries, an open breaker, a malformed body) keeps the fused order and
is marked ``failed`` with its code: graceful degradation, never an error to the user.

Each search's ``RerankOutcome`` (``types.py``) says what happened, why, how long the call took
and what the policies did (the call's own ``CallLog``); the answer's trace keeps it
(``generation/tracing.py``) and ``/metrics`` counts it (``ragkeel_rerank_total``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ragkeel.clock import SYSTEM_CLOCK, Clock
from ragkeel.errors import ChatModelError
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.rerank import Reranker, RerankRequest
from ragkeel.types import Confidence, RerankOutcome, SearchHit

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RerankGate:
    """Is the fused ranking ambiguous enough to rerank? (See the module doc.)"""

    margin_below: float = 0.1
    on_disagreement: bool = True
    top_score_below: float | None = None
    always: bool = False

    def decide(self, confidence: Confidence, candidates: int) -> tuple[bool, str]:
        """``(rerank, reason)`` for a fused ranking of ``candidates`` hits with ``confidence``."""
        if candidates < 2:
            return False, "few_hits"
        if self.always:
            return True, "always"
        if confidence.margin < self.margin_below:
            return True, "low_margin"
        both = confidence.top_dense_score is not None and confidence.top_keyword_score is not None
        if self.on_disagreement and both and not confidence.agreement:
            return True, "disagreement"
        if self.top_score_below is not None and confidence.top_score < self.top_score_below:
            return True, "low_top_score"
        return False, "confident"


class ConditionalReranker:
    """The gate and the reranker it applies (see the module doc); thread-safe."""

    def __init__(
        self,
        reranker: Reranker,
        gate: RerankGate = RerankGate(),
        *,
        candidates: int = 20,
        top_n: int | None = None,
        timeout_s: float | None = None,
        deadline_s: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if candidates < 2:
            raise ValueError(f"candidates must be at least 2, got {candidates}")
        self.reranker = reranker
        self.gate = gate
        self.candidates = candidates
        self.top_n = top_n
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self._clock = clock

    def skipped(self, reason: str, confidence: Confidence) -> RerankOutcome:
        return RerankOutcome("skipped", reason, confidence.margin)

    def rerank(
        self, query: str, hits: Sequence[SearchHit], reason: str, confidence: Confidence
    ) -> tuple[tuple[SearchHit, ...], RerankOutcome]:
        """``hits`` (fused order) with their first ``candidates`` reranked, and the outcome;
        ``reason``: why the gate applied it."""
        pool = list(hits)
        documents = tuple(h.chunk.index_text() for h in pool[: self.candidates])
        deadline = self._clock.now() + self.deadline_s if self.deadline_s else None
        request = RerankRequest(query, documents, self.top_n, self.timeout_s, deadline)
        log, started = CallLog(), time.perf_counter()
        try:
            with recording(log):
                response = self.reranker.rerank(request)
        except ChatModelError as exc:
            logger.warning("reranking failed (%s): the fused order is kept", exc.code)
            outcome = RerankOutcome(
                "failed",
                reason,
                confidence.margin,
                error=exc.code,
                candidates=len(documents),
                latency_ms=_since(started),
                calls=_calls(log),
            )
            return tuple(pool), outcome
        first = [replace(pool[r.index], rerank_score=r.score) for r in response.ranking]
        placed = {r.index for r in response.ranking}
        reranked = (*first, *(h for i, h in enumerate(pool) if i not in placed))
        outcome = RerankOutcome(
            "applied",
            reason,
            confidence.margin,
            candidates=len(documents),
            latency_ms=_since(started),
            top_changed=bool(reranked) and reranked[0].chunk.id != pool[0].chunk.id,
            calls=_calls(log),
        )
        return reranked, outcome


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _calls(log: CallLog) -> dict[str, object]:
    """What the rerank call's policies did: its attempts and decisions (retries, breaker)."""
    full = log.to_dict()
    return {"attempts": full["attempts"], "decisions": full["decisions"]}

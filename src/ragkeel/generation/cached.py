"""The answer cache as the answer flow sees it (issue 14): a small protocol the ``Answerer``
calls before retrieval and after its ``DoneEvent``, and the events of a hit.

``Answerer(cache=...)`` takes any ``AnswerCacheHook`` (the implementation, with its keys,
backends and semantic matcher, is ``caching/answers.py``; None: no cache). Per question:

1. ``lookup(CacheRequest)`` before anything else. A hit carries the stored ``Answer`` and the
   retrieval confidence it was made with: ``replay`` yields its events (one ``RetrievalEvent``
   with the stored hits and gate, the text as one ``TokenEvent``, the citations, the
   ``DoneEvent``) — no retrieval, no model call. A miss may carry the question's embedding
   (``vector``), computed for a semantic lookup, which retrieval then reuses.
2. ``keep(lookup, answer, confidence)`` with the fresh answer; it decides whether the answer
   is worth keeping and returns the outcome the answer is marked with (``Answer.cache``).

``CacheUse`` is the request's wish: ``use`` (look up, keep), ``refresh`` (do not look up, keep
the new answer: ``Cache-Control: no-cache`` or ``"cache": false``), ``off`` (neither:
``Cache-Control: no-store``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from ragkeel.generation.answer import (
    Answer,
    AnswerEvent,
    CacheOutcome,
    CitationEvent,
    DoneEvent,
    RetrievalEvent,
    TokenEvent,
)
from ragkeel.generation.policy import Budget, GenerationMode
from ragkeel.storage.filters import Filter
from ragkeel.types import AccessScope, Confidence, GateDecision

CacheUse = Literal["use", "refresh", "off"]
CACHE_USES: tuple[CacheUse, ...] = ("use", "refresh", "off")


@dataclass(frozen=True, slots=True)
class CacheRequest:
    """One question with everything per request its answer depends on, the answerer's
    defaults applied (the mode, ``k``, the effective budget: the policy's default token limit
    applied; the collection narrowed into ``flt``); the answer flow reads it too."""

    question: str
    flt: Filter | None
    mode: GenerationMode
    budget: Budget
    output_schema: Mapping[str, Any] | None
    k: int
    scope: AccessScope | None
    use: CacheUse = "use"


@dataclass(frozen=True, slots=True)
class Lookup:
    """What ``lookup`` found: ``answer`` and ``confidence`` on a hit; ``vector`` (the question's
    embedding) when one was computed; ``key`` is the hook's own handle for ``keep``."""

    outcome: CacheOutcome
    answer: Answer | None = None
    confidence: Confidence | None = None
    vector: npt.NDArray[np.float32] | None = None
    key: Any = None


class AnswerCacheHook(Protocol):
    def lookup(self, request: CacheRequest) -> Lookup: ...

    def keep(self, lookup: Lookup, answer: Answer, confidence: Confidence) -> CacheOutcome: ...


def replay(lookup: Lookup) -> Iterator[AnswerEvent]:
    """The events of a hit, in the order of a fresh answer (``answer.py``)."""
    answer, confidence = lookup.answer, lookup.confidence
    assert answer is not None and confidence is not None, "replay is for hits"
    yield RetrievalEvent(answer.hits, confidence, answer.gate or _NO_GATE)
    yield TokenEvent(answer.text)
    for citation in answer.citations:
        yield CitationEvent(citation)
    yield DoneEvent(dataclasses.replace(answer, cache=lookup.outcome))


_NO_GATE = GateDecision(False, "no_hits", None, None, 0.0, None)

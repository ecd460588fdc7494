"""The ``Reranker`` protocol and the values that cross it (issue 15).

A reranker scores passages against a query with a model that reads both together (a cross-
encoder behind Cohere's, Jina's or Hugging Face TEI's ``/rerank``), which the fused keyword and
dense ranking cannot. Synchronous, like ``ChatModel.complete`` and the retriever that calls it.

* ``rerank(RerankRequest)`` returns a ``RerankResponse`` whose ``ranking`` is best first: each
  entry the ``index`` of a document of the request and its ``score`` (a finite number; higher
  is more relevant; its scale is the model's). The indices are distinct; with ``top_n`` there
  are ``min(top_n, len(documents))`` of them, else one per document (a permutation). Ties keep
  the documents' order. No documents: an empty ranking (implementations need not call out).
* Failures are raised as ``ragkeel.errors.ChatModelError`` subclasses like a chat model's
  (timeout, unavailable, rate limited, rejected request, open circuit), and
  ``RerankResponseError`` for a body that is no ranking of the documents sent. So the gateway's
  retry loop and breaker (``retry.RetryLoop``, ``breaker.Breaker``) apply unchanged:
  ``rerank_policies.py`` wraps a reranker with them.
* ``timeout_s`` bounds one attempt, ``deadline`` (absolute, on the gateway clock) the whole
  call with its retries; both are read by the policies, ``timeout_s`` by the provider too.

The shipped contract every backend passes: ``ragkeel.testing.contracts.reranker``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ragkeel.errors import QueryError


@dataclass(frozen=True, slots=True)
class RerankRequest:
    """Score ``documents`` against ``query``; keep the best ``top_n`` (``None``: all)."""

    query: str
    documents: tuple[str, ...]
    top_n: int | None = None
    timeout_s: float | None = None
    deadline: float | None = None

    def __post_init__(self) -> None:
        if not self.query.strip():
            raise QueryError("a rerank query is empty", hint="pass the question to rerank for")
        if self.top_n is not None and self.top_n < 1:
            raise QueryError(f"top_n must be at least 1, got {self.top_n}", hint="or None: all")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")

    @property
    def expected(self) -> int:
        """How many entries the ranking has: ``min(top_n, len(documents))``."""
        n = len(self.documents)
        return n if self.top_n is None else min(self.top_n, n)


@dataclass(frozen=True, slots=True)
class Ranked:
    """One document of a ranking: its position in the request's ``documents`` and its score."""

    index: int
    score: float


@dataclass(frozen=True, slots=True)
class RerankResponse:
    ranking: tuple[Ranked, ...]  # best first
    model: str  # the deployment that ranked them


class Reranker(Protocol):
    @property
    def name(self) -> str:
        """The deployment name, as traces and breakers know it."""
        ...

    def rerank(self, request: RerankRequest) -> RerankResponse:
        """The documents ranked (see the module doc); raises a ``ChatModelError`` subclass."""
        ...


def best_first(scores: list[tuple[int, float]], keep: int) -> tuple[Ranked, ...]:
    """``(index, score)`` pairs as a ranking: score descending, ties by index, ``keep`` kept."""
    ordered = sorted(scores, key=lambda pair: (-pair[1], pair[0]))
    return tuple(Ranked(i, s) for i, s in ordered[:keep])

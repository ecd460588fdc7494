"""``AnswerCache``: the answer flow's cache (``generation/cached.py``'s ``AnswerCacheHook``).

lookup, per question (``CacheRequest``):

1. ``use`` is not ``use`` (the request said ``Cache-Control: no-cache``/``no-store`` or
   ``"cache": false``): ``bypass``, no lookup;
2. the exact key (``keys.py``: the normalised question in its bucket — scope, collections and
   their current ``revision`` read from the store, configuration, request settings) read from
   the backend: a stored answer is a ``hit`` of kind ``exact``;
3. with the semantic cache (``cache.semantic``): the question embedded once (the vector goes
   on to retrieval on a miss), the bucket's candidates (``semantic_index.py``: the same
   bucket, so the same scope, collections, revision and settings) given to the matcher
   (``semantic.py``: cosine threshold, then the guards); its pick's answer is a ``hit`` of
   kind ``semantic``;
4. else a ``miss``.

A hit is the stored answer for the new question: no retrieval, no model, so no usage and no
cost (``served_by="cache"``; the model and template that wrote it stay named), its latency
the lookup's own (``latency_ms["cache"]``).

keep, after a fresh answer: only good answers are kept, for ``ttl_s`` —

* kept: generative and extractive answers that are grounded and not degraded, and "cannot
  answer" refusals that are not degraded (the gate's refusal depends only on the collections,
  whose revision is in the key: an ingest that could answer it makes a new key);
* skipped, with the reason in the outcome: ``degraded`` (a model failure, a budget, a broken
  output format: the next ask may do better), ``ungrounded`` (a generative answer whose
  sentences the sources do not support), ``invalid_citations``, ``no_store`` (the request
  said so). A ``refresh`` request's answer replaces the stored one.

Errors never get here (no ``DoneEvent``), nor do cancelled answers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from ragkeel.caching.backends import CacheBackend
from ragkeel.caching.codec import Stored, decode, encode
from ragkeel.caching.keys import Bucket, answer_key
from ragkeel.caching.semantic import CachedQuestion, SemanticMatcher
from ragkeel.caching.semantic_index import SemanticIndex
from ragkeel.embeddings.base import Vector
from ragkeel.gateway.base import Usage
from ragkeel.generation.answer import Answer, CacheOutcome
from ragkeel.generation.cached import CacheRequest, Lookup
from ragkeel.observability import names
from ragkeel.types import DEFAULT_TENANT, AccessScope, Confidence

Revision = Callable[[str | None, AccessScope | None], str]  # the store's revision
EmbedQuery = Callable[[str], Vector]
SERVED_BY = "cache"


@dataclasses.dataclass(frozen=True, slots=True)
class SemanticLookup:
    """The semantic cache's parts: the embedder retrieval uses (its vector goes on to
    retrieval on a miss), the matcher (``semantic.py``), the candidates (``semantic_index.py``)."""

    embed: EmbedQuery
    matcher: SemanticMatcher
    index: SemanticIndex


@dataclasses.dataclass(frozen=True, slots=True)
class CacheKey:
    exact: str
    bucket: str


class AnswerCache:
    """See the module docstring. ``revision(collection, scope)`` is the store's;
    ``fingerprint`` the configuration's (``keys.fingerprint``, made by the container)."""

    def __init__(
        self,
        backend: CacheBackend,
        revision: Revision,
        fingerprint: str,
        *,
        ttl_s: float,
        semantic: SemanticLookup | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self.backend, self.revision, self.fingerprint = backend, revision, fingerprint
        self.ttl_s, self.semantic, self._now = ttl_s, semantic, now

    def lookup(self, request: CacheRequest) -> Lookup:
        started = time.perf_counter()
        if request.use == "off":
            return Lookup(CacheOutcome("bypass"))
        key = self.key_of(request)
        if request.use == "refresh":
            return Lookup(CacheOutcome("bypass"), key=key)
        stored = self._read(key.exact)
        if stored is not None:
            return self._hit(request, stored, CacheOutcome("hit", "exact"), started)
        vector = None
        if self.semantic is not None:
            vector = self.semantic.embed(request.question)
            candidates = self.semantic.index.candidates(key.bucket)
            found = self.semantic.matcher.match(request.question, vector, candidates).match
            if found is not None and (stored := self._read(found.key)) is not None:
                outcome = CacheOutcome("hit", "semantic", similarity=round(found.similarity, 4))
                return self._hit(request, stored, outcome, started)
        return Lookup(CacheOutcome("miss"), vector=vector, key=key)

    def keep(self, lookup: Lookup, answer: Answer, confidence: Confidence) -> CacheOutcome:
        outcome = lookup.outcome
        if not isinstance(lookup.key, CacheKey):
            return dataclasses.replace(outcome, skip="no_store")
        if (reason := skip_reason(answer)) is not None:
            return dataclasses.replace(outcome, skip=reason)
        now = self._now()
        self.backend.set(lookup.key.exact, encode(answer, confidence, now), self.ttl_s)
        if self.semantic is not None and lookup.vector is not None:
            asked = CachedQuestion(lookup.key.exact, answer.question, lookup.vector)
            self.semantic.index.add(lookup.key.bucket, asked, self.ttl_s)
        return dataclasses.replace(outcome, stored=True)

    def key_of(self, request: CacheRequest) -> CacheKey:
        """The exact key of ``request`` and its bucket (the semantic candidates's scope)."""
        scope = request.scope or AccessScope(DEFAULT_TENANT, all_principals=True)
        collection = request.flt.collection if request.flt is not None else None
        budget = request.budget
        bucket = Bucket(
            scope=scope,
            flt=request.flt,
            revision=self.revision(collection, request.scope),
            fingerprint=self.fingerprint,
            k=request.k,
            mode=request.mode,
            max_tokens=budget.max_tokens,
            answer_tokens=budget.answer_tokens,
            output_schema=request.output_schema,
        ).digest()
        return CacheKey(answer_key(request.question, bucket), bucket)

    def _read(self, key: str) -> Stored | None:
        raw = self.backend.get(key)
        return decode(raw) if raw is not None else None

    def _hit(
        self, request: CacheRequest, stored: Stored, outcome: CacheOutcome, started: float
    ) -> Lookup:
        ms = round((time.perf_counter() - started) * 1000, 3)
        age = max(0.0, self._now() - stored.made_at)
        answer = dataclasses.replace(
            stored.answer,
            question=request.question,
            usage=Usage(),
            cost=0.0,
            latency_ms={names.STAGE_CACHE: ms, names.STAGE_FIRST_TOKEN: ms, names.STAGE_TOTAL: ms},
            served_by=SERVED_BY,
            tenant=request.scope.tenant if request.scope is not None else stored.answer.tenant,
        )
        outcome = dataclasses.replace(outcome, age_s=round(age, 3))
        return Lookup(outcome, answer, stored.confidence)


def skip_reason(answer: Answer) -> str | None:
    """Why ``answer`` is not kept (None: it is); see the module docstring."""
    if answer.degraded:
        return "degraded"
    if answer.mode == "cannot_answer":
        return None
    if answer.invalid_citations:
        return "invalid_citations"
    if not answer.grounded:
        return "ungrounded"
    return None

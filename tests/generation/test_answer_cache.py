"""The answer cache in the answer flow (issue 14): a real SQLite store and retriever over the
shared test corpus (``conftest.py``), the scripted model, ``AnswerCache`` over the tiered LRU + SQLite backend.

A hit is served without retrieval or a model call; every kind of store write (ingest, delete,
ACL change, re-embedding, drop) makes the next ask a miss; scopes never share answers; what is
kept and what is skipped; the bypasses; the semantic lookup's one embedding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from corpus import COLLECTION, OFF_TOPIC, ON_TOPIC, TEST_GATE
from ragkeel.caching.answers import AnswerCache, SemanticLookup
from ragkeel.caching.backends import MemoryCache, TieredCache
from ragkeel.caching.semantic import CachedQuestion, Candidates, SemanticMatcher
from ragkeel.caching.semantic_index import SemanticIndex
from ragkeel.caching.sqlite_backend import SqliteCache
from ragkeel.embeddings.hashing import HashingEmbedder
from ragkeel.errors import EmbeddingModelMismatchError
from ragkeel.gateway.providers.scripted import ScriptedChatModel, ScriptedFailure
from ragkeel.generation.answer import (
    Answer,
    CitationEvent,
    DoneEvent,
    RetrievalEvent,
    TokenEvent,
)
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.cached import CacheRequest
from ragkeel.generation.policy import AnswerPolicy, Budget
from ragkeel.retrieval.hybrid import HybridRetriever
from ragkeel.storage.filters import Filter
from ragkeel.storage.sqlite import SqliteDocumentStore
from ragkeel.types import AccessScope, Document

GOOD = "Rotate every API key every ninety days [1]."
POLICY = AnswerPolicy(gate_threshold=TEST_GATE)
SIMILAR = 0.6  # a semantic threshold for the hashing embedder of the test corpus


@pytest.fixture
def cache(tmp_path: Path, store: SqliteDocumentStore) -> Iterator[AnswerCache]:
    backend = TieredCache(MemoryCache(100), SqliteCache(tmp_path / "answer-cache.db", 100))
    yield AnswerCache(
        backend, lambda c, scope: store.revision(c, scope=scope), "config-1", ttl_s=3600
    )
    backend.close()


@pytest.fixture
def model() -> ScriptedChatModel:
    return ScriptedChatModel([GOOD])


@pytest.fixture
def answerer(retriever: HybridRetriever, model: ScriptedChatModel, cache: AnswerCache) -> Answerer:
    return Answerer(retriever, model, POLICY, cache=cache)


def ask(answerer: Answerer, question: str = ON_TOPIC, **kw: object) -> Answer:
    return answerer.answer(question, collection=COLLECTION, **kw)  # type: ignore[arg-type]


def test_the_same_question_again_is_served_from_the_cache(
    answerer: Answerer, model: ScriptedChatModel, retriever: HybridRetriever
) -> None:
    first = ask(answerer)
    assert first.cache is not None and first.cache.decision == "miss" and first.cache.stored
    assert not first.cached and model.calls == 1
    embedded = _embedded(retriever)
    events = list(answerer.stream("  how OFTEN should i rotate an api key ", collection=COLLECTION))
    done = events[-1]
    assert isinstance(done, DoneEvent)
    again = done.answer
    assert again.cached and again.cache is not None and again.cache.kind == "exact"
    assert model.calls == 1  # no model call
    assert _embedded(retriever) == embedded  # no retrieval either
    assert again.text == first.text and again.citations == first.citations
    assert again.hits == first.hits and again.gate == first.gate
    assert again.question == "  how OFTEN should i rotate an api key "
    assert again.usage.total_tokens == 0 and again.cost == 0.0 and again.served_by == "cache"
    kinds = [type(e) for e in events]
    assert kinds == [RetrievalEvent, TokenEvent] + [CitationEvent] * len(first.citations) + [
        DoneEvent
    ]


def test_another_question_or_scope_is_a_miss(answerer: Answerer, model: ScriptedChatModel) -> None:
    ask(answerer)
    ask(answerer, "How often should I rotate an API key, really?")
    assert model.calls == 2
    ask(answerer, scope=AccessScope("default", frozenset({"alice"})))
    ask(answerer, scope=AccessScope("default", frozenset({"bob"})))
    assert model.calls == 4  # principals are part of the key
    ask(answerer, k=3)
    ask(answerer, budget=Budget(answer_tokens=100))
    assert model.calls == 6
    ask(answerer, scope=AccessScope("default", frozenset({"bob"})))
    assert model.calls == 6  # each of those is now cached in its own entry


def test_no_stale_answer_survives_an_ingest(
    answerer: Answerer, model: ScriptedChatModel, store: SqliteDocumentStore
) -> None:
    ask(answerer)
    _write(store, "new-doc", "Backups run nightly.")
    assert not ask(answerer).cached
    assert model.calls == 2


def test_no_stale_answer_survives_a_delete(
    answerer: Answerer, model: ScriptedChatModel, store: SqliteDocumentStore
) -> None:
    cited = ask(answerer).citations[0].document_id
    assert store.delete_documents(COLLECTION, [cited]) == 1
    again = ask(answerer)
    assert not again.cached
    assert cited not in {c.document_id for c in again.citations}


def test_no_stale_answer_survives_an_acl_change(
    answerer: Answerer, model: ScriptedChatModel, store: SqliteDocumentStore
) -> None:
    first = ask(answerer)
    cited = first.citations[0].document_id
    assert store.set_principals(COLLECTION, cited, ["hr"])  # now only "hr" may see it
    again = ask(answerer)
    assert not again.cached and model.calls == 2


def test_no_stale_answer_survives_a_reembedding(
    answerer: Answerer, model: ScriptedChatModel, store: SqliteDocumentStore
) -> None:
    ask(answerer)
    version = store.begin_version(COLLECTION, "other-model", 4).version
    pending = store.pending_chunks(COLLECTION, version, limit=1000)
    vectors = np.ones((len(pending), 4), np.float32) / 2.0
    store.put_version_vectors(COLLECTION, version, [p.ref for p in pending], vectors)
    assert store.activate_version(COLLECTION, version)
    # the revision changed, so the cache misses and retrieval runs: this answerer's embedder no
    # longer matches the collection's, which is refused (issue 15) instead of a stale answer
    with pytest.raises(EmbeddingModelMismatchError):
        ask(answerer)


def test_no_stale_answer_survives_a_drop(
    answerer: Answerer, model: ScriptedChatModel, store: SqliteDocumentStore
) -> None:
    ask(answerer)
    store.drop_collection(COLLECTION)
    dropped = ask(answerer)
    assert not dropped.cached and dropped.mode == "cannot_answer"


def test_refusals_are_kept_degraded_answers_are_not(
    retriever: HybridRetriever, cache: AnswerCache
) -> None:
    refusing = Answerer(retriever, ScriptedChatModel([GOOD]), POLICY, cache=cache)
    assert ask(refusing, OFF_TOPIC).mode == "cannot_answer"
    assert ask(refusing, OFF_TOPIC).cached
    failing = ScriptedChatModel([ScriptedFailure("unavailable")])
    degraded = Answerer(retriever, failing, POLICY, cache=cache)
    first = ask(degraded, "How do I revoke a leaked key?")
    assert first.degraded and first.cache is not None
    assert (first.cache.stored, first.cache.skip) == (False, "degraded")
    ask(degraded, "How do I revoke a leaked key?")
    assert failing.calls == 2  # asked the model again


def test_an_ungrounded_answer_is_not_kept(retriever: HybridRetriever, cache: AnswerCache) -> None:
    model = ScriptedChatModel(["Bananas are yellow and grow on trees."])
    answerer = Answerer(retriever, model, POLICY, cache=cache)
    first = ask(answerer)
    assert first.cache is not None and first.cache.skip == "ungrounded"
    ask(answerer)
    assert model.calls == 2


def test_refresh_skips_the_lookup_and_replaces_off_does_neither(
    answerer: Answerer, model: ScriptedChatModel
) -> None:
    ask(answerer)
    refreshed = ask(answerer, cache="refresh")
    assert refreshed.cache is not None and refreshed.cache.decision == "bypass"
    assert refreshed.cache.stored and model.calls == 2
    off = ask(answerer, "How do I revoke a leaked key?", cache="off")
    assert off.cache is not None and (off.cache.decision, off.cache.skip) == ("bypass", "no_store")
    assert not ask(answerer, "How do I revoke a leaked key?").cached
    assert ask(answerer).cached and model.calls == 4


def test_entries_expire(
    retriever: HybridRetriever, store: SqliteDocumentStore, model: ScriptedChatModel
) -> None:
    now = [1000.0]
    backend = MemoryCache(10, now=lambda: now[0])
    cache = AnswerCache(
        backend, lambda c, s: store.revision(c, scope=s), "x", ttl_s=60, now=lambda: now[0]
    )
    answerer = Answerer(retriever, model, POLICY, cache=cache)
    ask(answerer)
    now[0] += 59
    assert ask(answerer).cached
    now[0] += 2
    assert not ask(answerer).cached and model.calls == 2


def test_a_semantic_hit_skips_retrieval_and_a_miss_embeds_once(
    tmp_path: Path, store: SqliteDocumentStore, retriever: HybridRetriever
) -> None:
    backend = MemoryCache(100)
    embedder = retriever.embedder
    matcher = SemanticMatcher(SIMILAR)  # the hashing embedder's cosines, not MiniLM's
    semantic = SemanticLookup(embedder.embed_query, matcher, SemanticIndex(backend))
    cache = AnswerCache(
        backend, lambda c, s: store.revision(c, scope=s), "x", ttl_s=60, semantic=semantic
    )
    model = ScriptedChatModel([GOOD])
    answerer = Answerer(retriever, model, POLICY, cache=cache)
    before = _embedded(retriever)
    ask(answerer)
    assert _embedded(retriever) == before + 1  # one embedding: the lookup's, reused
    paraphrase = "How often should I rotate my API key, please?"
    assert (
        matcher.similarities(
            embedder.embed_query(paraphrase),
            Candidates.of([CachedQuestion("k", ON_TOPIC, embedder.embed_query(ON_TOPIC))]),
        )[0]
        >= SIMILAR
    )
    hit = ask(answerer, paraphrase)
    assert hit.cached and hit.cache is not None and hit.cache.kind == "semantic"
    assert hit.cache.similarity is not None and model.calls == 1
    negated_q = "How often should I not rotate my API key?"
    outcome = matcher.match(
        negated_q,
        embedder.embed_query(negated_q),
        semantic.index.candidates(_bucket(cache, negated_q)),
    )
    assert outcome.rejected_by  # above the threshold, refused by a guard
    negated = ask(answerer, negated_q)
    assert not negated.cached and model.calls == 2
    _write(store, "new-doc", "Backups run nightly.")
    assert not ask(answerer, paraphrase).cached  # another revision: another bucket


def _bucket(cache: AnswerCache, question: str) -> str:
    request = CacheRequest(
        question, Filter(collection=COLLECTION), "generative", Budget(), None, 8, None
    )
    return cache.key_of(request).bucket


def _embedded(retriever: HybridRetriever) -> int:
    embedder = retriever.embedder
    assert isinstance(embedder, HashingEmbedder)
    return embedder.texts_embedded


def _write(store: SqliteDocumentStore, doc_id: str, text: str) -> None:
    from ragkeel.types import Chunk

    doc = Document(doc_id, COLLECTION, f"/docs/{doc_id}.md", doc_id, text, f"h-{doc_id}")
    chunk = Chunk(f"{doc_id}-0", doc_id, COLLECTION, 0, text, 0, len(text))
    vector = HashingEmbedder(256).embed_documents([text])
    store.upsert_document(doc, [chunk], vector, embedding_model=HashingEmbedder(256).name)

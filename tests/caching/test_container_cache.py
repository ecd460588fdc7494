"""The answer cache as the container builds it from ``cache`` (issue 14): off, memory only,
the embedded default (LRU before SQLite in the home), and Redis when ``redis.url`` is set —
where two replicas (two containers over one store, each with its own in-process LRU) share
answers; ``backend: redis`` without ``redis.url`` is a configuration error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

from corpus import COLLECTION, ON_TOPIC, TEST_GATE, write_corpus
from ragkeel.caching.backends import MemoryCache, TieredCache
from ragkeel.caching.redis_backend import RedisCache
from ragkeel.caching.sqlite_backend import SqliteCache
from ragkeel.container import Container
from ragkeel.errors import ConfigError
from ragkeel.gateway.providers.scripted import ScriptedChatModel
from ragkeel.generation.answerer import Answerer
from ragkeel.generation.policy import AnswerPolicy
from ragkeel.settings import Settings, load_settings

GOOD = "Rotate every API key every ninety days [1]."


def settings(home: Path, **more: Any) -> Settings:
    return load_settings(
        home=home,
        embedding={"provider": "hashing", "hashing_dimension": 256, "cache": False},
        ingestion={"chunk_tokens": 64},
        generation={"gate_threshold": TEST_GATE},
        **more,
    )


def answerer(container: Container, model: ScriptedChatModel) -> Answerer:
    policy = AnswerPolicy(gate_threshold=TEST_GATE)
    return Answerer(container.retriever, model, policy, cache=container.answer_cache)


def test_the_backends_the_settings_choose(tmp_path: Path) -> None:
    with Container(settings(tmp_path / "a", cache={"enabled": False})) as c:
        assert c.answer_cache is None
    with Container(settings(tmp_path / "b", cache={"backend": "memory"})) as c:
        assert isinstance(c.answer_cache_backend, MemoryCache)
    with Container(settings(tmp_path / "c")) as c:
        backend = c.answer_cache_backend
        assert isinstance(backend, TieredCache) and isinstance(backend.back, SqliteCache)
        assert backend.back.path == tmp_path / "c" / "answer-cache.db"
    with (
        Container(settings(tmp_path / "d", cache={"backend": "redis"})) as c,
        pytest.raises(ConfigError, match=r"redis\.url"),
    ):
        _ = c.answer_cache_backend


def test_replicas_share_answers_through_redis(tmp_path: Path, redis_url: str) -> None:
    home = tmp_path / "home"  # one store (as replicas share PostgreSQL), two processes' LRUs
    shared = settings(home, redis={"url": redis_url})
    first_model, second_model = ScriptedChatModel([GOOD]), ScriptedChatModel([GOOD])
    with Container(shared) as first, Container(shared) as second:
        assert (
            first.pipeline.ingest([str(write_corpus(tmp_path / "docs"))], COLLECTION).exit_code == 0
        )
        backend = first.answer_cache_backend
        assert isinstance(backend, TieredCache) and isinstance(backend.back, RedisCache)
        asked = answerer(first, first_model).answer(ON_TOPIC, collection=COLLECTION)
        again = answerer(second, second_model).answer(ON_TOPIC, collection=COLLECTION)
    assert not asked.cached and again.cached
    assert (first_model.calls, second_model.calls) == (1, 0)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.keys("ragkeel:answers:*")  # under redis.key_prefix
    finally:
        client.close()

"""The answer-cache backend contract (``ragkeel.testing.contracts.answer_cache``) over every
backend: the in-process LRU, SQLite, Redis (the ``redis_url`` fixture's server), and the
tiered LRU in front of SQLite (the embedded default) and of Redis; then what only some do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragkeel.caching.backends import CacheBackend, ExpiringBackend, MemoryCache, TieredCache
from ragkeel.caching.redis_backend import RedisCache
from ragkeel.caching.sqlite_backend import SqliteCache
from ragkeel.shared_state import Outage, SharedState, connect
from ragkeel.testing.contracts.answer_cache import AnswerCacheBackendContract, CacheOpener

BACKENDS = ["memory", "sqlite", "memory+sqlite", "redis", "memory+redis"]


def _redis(url: str) -> SharedState:
    return connect(url, prefix="test:", outage=Outage(pause_s=0.0))


class TestBackends(AnswerCacheBackendContract):
    @pytest.fixture(params=BACKENDS)
    def open_cache(self, request: pytest.FixtureRequest, tmp_path: Path) -> CacheOpener:
        kind: str = request.param
        opened = 0

        def back(max_entries: int) -> ExpiringBackend:
            nonlocal opened
            opened += 1
            if kind.endswith("sqlite"):
                return SqliteCache(tmp_path / f"cache{opened}.db", max_entries)
            shared = _redis(request.getfixturevalue("redis_url"))
            request.addfinalizer(shared.close)
            shared.client.flushall()
            return RedisCache(shared, max_entries)

        def open_(max_entries: int) -> CacheBackend:
            if kind == "memory":
                return MemoryCache(max_entries)
            if kind.startswith("memory+"):
                return TieredCache(MemoryCache(max_entries), back(max_entries))
            return back(max_entries)

        return open_


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "answer-cache.db"


def test_sqlite_entries_are_shared_by_handles_and_kept_across_restarts(sqlite_path: Path) -> None:
    first, second = SqliteCache(sqlite_path, 10), SqliteCache(sqlite_path, 10)
    try:
        first.set("k", b"v", 60)
        assert second.get("k") == b"v"
    finally:
        first.close()
        second.close()
    again = SqliteCache(sqlite_path, 10)
    try:
        assert again.get("k") == b"v"
    finally:
        again.close()


def test_sqlite_evicts_the_least_recently_read(sqlite_path: Path) -> None:
    now = [1000.0]
    cache = SqliteCache(sqlite_path, 2, now=lambda: now[0])
    try:
        cache.set("a", b"1", 60)
        now[0] += 1
        cache.set("b", b"2", 60)
        now[0] += 1
        assert cache.get("a") == b"1"  # read: now the most recent
        now[0] += 1
        cache.set("c", b"3", 60)
        assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1", None, b"3")
        assert len(cache) == 2
    finally:
        cache.close()


def test_the_tiered_cache_serves_from_memory_and_copies_up(sqlite_path: Path) -> None:
    back = SqliteCache(sqlite_path, 10)
    writer = TieredCache(MemoryCache(10), back)
    reader_front = MemoryCache(10)
    reader = TieredCache(reader_front, SqliteCache(sqlite_path, 10))
    try:
        writer.set("k", b"v", 60)
        assert reader_front.get("k") is None
        assert reader.get("k") == b"v"  # from SQLite, copied into the reader's memory
        assert reader_front.get("k") == b"v"
    finally:
        writer.close()
        reader.close()


@pytest.fixture
def redis_cache(redis_url: str) -> Iterator[RedisCache]:
    shared = _redis(redis_url)
    yield RedisCache(shared, 5)
    shared.close()


def test_redis_keeps_its_keys_under_the_prefix_and_clear_leaves_others(
    redis_cache: RedisCache,
) -> None:
    client = redis_cache.shared.client
    client.set("test:limits:x", b"other")
    redis_cache.set("k", b"v", 60)
    assert client.get("test:answers:k") == b"v"
    redis_cache.clear()
    assert redis_cache.get("k") is None
    assert client.get("test:limits:x") == b"other"


def test_an_unreachable_redis_is_an_empty_cache(tmp_path: Path) -> None:
    errors: list[str] = []
    outage = Outage(pause_s=60.0, on_error=errors.append)
    shared = connect("redis://127.0.0.1:9/0", prefix="t:", outage=outage)  # nothing listens
    cache = RedisCache(shared, 5)
    try:
        cache.set("k", b"v", 60)  # fails: counted, then the pause
        assert cache.get("k") is None
        assert errors == ["cache", "cache"]
    finally:
        shared.close()

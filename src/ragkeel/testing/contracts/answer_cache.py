"""The answer-cache backend contract (issue 14): what every ``caching.backends.CacheBackend``
must do — in-process LRU, SQLite, Redis, and the tiered LRU in front of either.

* a value round-trips byte for byte (any bytes); an absent key is a miss (None), never an
  error; a new value replaces the old one;
* an entry expires after its own ``ttl_s``: then it is a miss;
* at most ``max_entries`` are kept: writing past it drops older entries, never the newest;
* ``delete`` drops one entry, ``clear`` every entry.

A backend subclasses ``AnswerCacheBackendContract`` as ``Test...`` and overrides one fixture,
``open_cache``: a function of ``max_entries`` that opens the backend on fresh, empty storage
(the suite closes what it opens). Needs pytest (the ``dev`` extra).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from ragkeel.caching.backends import CacheBackend

CacheOpener = Callable[[int], CacheBackend]  # max_entries -> a backend on fresh storage
TTL_S = 3600.0


class AnswerCacheBackendContract:
    @pytest.fixture
    def open_cache(self) -> CacheOpener:
        raise NotImplementedError("override open_cache: a backend on fresh storage")

    @pytest.fixture
    def opened(self, open_cache: CacheOpener) -> Iterator[Callable[[int], CacheBackend]]:
        handles: list[CacheBackend] = []

        def open_(max_entries: int) -> CacheBackend:
            handles.append(open_cache(max_entries))
            return handles[-1]

        yield open_
        for handle in handles:
            handle.close()

    def test_values_round_trip_and_misses_are_none(self, opened: CacheOpener) -> None:
        cache = opened(100)
        value = bytes(range(256)) + "é答".encode()
        assert cache.get("k1") is None
        cache.set("k1", value, TTL_S)
        assert cache.get("k1") == value
        assert cache.get("k2") is None

    def test_a_new_value_replaces_the_old(self, opened: CacheOpener) -> None:
        cache = opened(100)
        cache.set("k", b"old", TTL_S)
        cache.set("k", b"new", TTL_S)
        assert cache.get("k") == b"new"

    def test_an_entry_expires_after_its_ttl(self, opened: CacheOpener) -> None:
        cache = opened(100)
        cache.set("short", b"v", 0.3)
        cache.set("long", b"w", TTL_S)
        assert cache.get("short") == b"v"
        deadline = time.monotonic() + 5.0
        while cache.get("short") is not None:
            assert time.monotonic() < deadline, "the entry outlived its ttl by seconds"
            time.sleep(0.05)
        assert cache.get("long") == b"w"

    def test_at_most_max_entries_are_kept_newest_first(self, opened: CacheOpener) -> None:
        cache = opened(3)
        for i in range(8):
            cache.set(f"k{i}", f"v{i}".encode(), TTL_S)
        kept = [i for i in range(8) if cache.get(f"k{i}") is not None]
        assert len(kept) <= 3
        assert 7 in kept
        assert 0 not in kept

    def test_delete_and_clear(self, opened: CacheOpener) -> None:
        cache = opened(100)
        for key in ("a", "b", "c"):
            cache.set(key, key.encode(), TTL_S)
        cache.delete("a")
        cache.delete("missing")
        assert cache.get("a") is None
        assert cache.get("b") == b"b"
        cache.clear()
        assert cache.get("b") is None
        assert cache.get("c") is None

"""Where cached answers are kept: the ``CacheBackend`` protocol and its in-process backends.

A backend maps a key (a hex digest, ``keys.py``) to bytes (an encoded answer, ``codec.py``),
each entry with its own time to live, and keeps at most ``max_entries``: past that, the least
recently used (memory, SQLite) or the oldest written (Redis) entries go first. A backend never
raises for a miss; an expired entry is a miss. Three implementations pass the one contract suite
(``ragkeel.testing.contracts.answer_cache``):

* ``MemoryCache`` (here): an LRU in this process, thread-safe;
* ``SqliteCache`` (``sqlite_backend.py``): a WAL-mode file in ``RAGKEEL_HOME``, shared by the
  workers of one home and kept across restarts;
* ``RedisCache`` (``redis_backend.py``): shared by replicas (``redis.url``).

``TieredCache`` puts a ``MemoryCache`` in front of another backend (the embedded default: LRU in
front of SQLite): a hit in memory costs no I/O; an entry read from below is copied up with the
time it has left. Entries never need invalidating by hand — the key carries the collections'
revision (``keys.py``) — so a stale copy in one worker's memory is simply never asked for again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

Now = Callable[[], float]  # wall-clock seconds (time.time): expiry is shared across processes


class CacheBackend(Protocol):
    """A bounded key -> bytes map whose entries expire (see the module docstring)."""

    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""
        ...

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl_s`` seconds (replacing any old value)."""
        ...

    def delete(self, key: str) -> None: ...

    def clear(self) -> None:
        """Forget every entry of this cache (only this cache's own keys)."""
        ...

    def close(self) -> None: ...


class MemoryCache:
    """An LRU of at most ``max_entries`` values in this process; a get refreshes recency."""

    def __init__(self, max_entries: int, *, now: Now = time.time) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self._now = now
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        found = self.entry(key)
        return None if found is None else found[0]

    def entry(self, key: str) -> tuple[bytes, float] | None:
        """(value, expiry in wall-clock seconds), or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[1] <= self._now():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self.set_until(key, value, self._now() + ttl_s)

    def set_until(self, key: str, value: bytes, expires: float) -> None:
        with self._lock:
            self._items[key] = (value, expires)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def close(self) -> None:
        self.clear()


class ExpiringBackend(CacheBackend, Protocol):
    """A backend that can say when an entry expires (what ``TieredCache`` copies up with)."""

    def entry(self, key: str) -> tuple[bytes, float] | None: ...


class TieredCache:
    """``front`` (this process's LRU) before ``back`` (SQLite or Redis)."""

    def __init__(self, front: MemoryCache, back: ExpiringBackend) -> None:
        self.front, self.back = front, back

    def get(self, key: str) -> bytes | None:
        found = self.entry(key)
        return None if found is None else found[0]

    def entry(self, key: str) -> tuple[bytes, float] | None:
        found = self.front.entry(key)
        if found is None:
            found = self.back.entry(key)
            if found is not None:
                self.front.set_until(key, *found)
        return found

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self.back.set(key, value, ttl_s)
        self.front.set(key, value, ttl_s)

    def delete(self, key: str) -> None:
        self.back.delete(key)
        self.front.delete(key)

    def clear(self) -> None:
        self.back.clear()
        self.front.clear()

    def close(self) -> None:
        self.front.close()
        self.back.close()

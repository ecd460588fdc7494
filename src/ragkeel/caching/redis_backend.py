"""``RedisCache``: cached answers in the Redis replicas share (``redis.url``, issue 13).

An entry is one string key ``<prefix>answers:<key>`` written with ``SET ... PX`` (Redis expires
it), and a member of the sorted set ``<prefix>answers:index`` scored by its expiry. One Lua
script writes both and trims the set in the same step: members already expired go, and past
``max_entries`` those expiring first (with one TTL for every entry: the oldest written) go
with their keys, so the cache stays bounded without Redis's ``maxmemory`` policy.

When Redis cannot be reached the cache is simply empty (every lookup a miss, nothing kept): the
outage is logged and counted as ``use="cache"`` (``shared_state.py``), and during its pause
Redis is not asked at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ragkeel.caching.backends import Now

if TYPE_CHECKING:
    from ragkeel.shared_state import SharedState

T = TypeVar("T")

_SET = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if excess > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
  redis.call('DEL', unpack(old))
end
return 1
"""


class RedisCache:
    """At most ``max_entries`` answers in the shared Redis."""

    def __init__(self, shared: SharedState, max_entries: int, *, now: Now = time.time) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.shared, self.max_entries, self._now = shared, max_entries, now
        self._index = shared.key("answers", "index")
        self._script: Any = shared.client.register_script(_SET)

    def _key(self, key: str) -> str:
        return self.shared.key("answers", key)

    def get(self, key: str) -> bytes | None:
        found = self.entry(key)
        return None if found is None else found[0]

    def entry(self, key: str) -> tuple[bytes, float] | None:
        def read() -> tuple[bytes, float] | None:
            pipe = self.shared.client.pipeline(transaction=False)
            pipe.get(self._key(key))
            pipe.pttl(self._key(key))
            value, ttl_ms = pipe.execute()
            if value is None or ttl_ms is None or int(ttl_ms) <= 0:
                return None
            return bytes(value), self._now() + int(ttl_ms) / 1000

        return self._call(read, None)

    def set(self, key: str, value: bytes, ttl_s: float) -> None:
        now = self._now()
        ttl_ms = max(1, int(ttl_s * 1000))
        keys = [self._key(key), self._index]
        args = [value, ttl_ms, now + ttl_s, now, self.max_entries]
        self._call(lambda: bool(self._script(keys=keys, args=args)), False)

    def delete(self, key: str) -> None:
        def drop() -> None:
            pipe = self.shared.client.pipeline(transaction=True)
            pipe.delete(self._key(key))
            pipe.zrem(self._index, self._key(key))
            pipe.execute()

        self._call(drop, None)

    def clear(self) -> None:
        def drop_all() -> None:
            client = self.shared.client
            batch = list(client.scan_iter(match=self.shared.key("answers", "*"), count=500))
            for start in range(0, len(batch), 500):
                client.delete(*batch[start : start + 500])

        self._call(drop_all, None)

    def __len__(self) -> int:
        return int(self._call(lambda: self.shared.client.zcard(self._index), 0))

    def close(self) -> None:
        """The connection is the container's (``SharedState``): nothing to close here."""

    def _call(self, operation: Callable[[], T], fallback: T) -> T:
        outage = self.shared.outage
        if not outage.available():
            outage.failed("cache")
            return fallback
        try:
            result = operation()
        except Exception as exc:  # an unreachable or failing Redis is a miss, never a 500
            outage.failed("cache", exc)
            return fallback
        outage.succeeded()
        return result

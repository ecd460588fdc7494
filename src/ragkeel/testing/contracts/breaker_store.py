"""The breaker-store contract: what every ``BreakerStore`` (``gateway/breaker_store.py``) must do
— ``InMemoryBreakerStore`` and ``RedisBreakerStore`` (shared by replicas; both run in
``tests/gateway/test_breaker.py``), a SQL one if it comes.

* An unknown key reads as ``BreakerState()`` (closed); keys are independent.
* ``update(key, change)`` stores ``change(state)[0]`` and returns ``change(state)[1]``.
* Updates are atomic: concurrent read-modify-writes of one key lose nothing.
* A ``change`` that raises changes nothing, and its error reaches the caller.
* A state round-trips whole: every field, the bucket window and ``None`` leases included (a
  shared store serialises it).

A backend subclasses ``BreakerStoreContract`` as ``Test...`` and overrides the ``store``
fixture. Needs pytest (the ``dev`` extra).
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from ragkeel.gateway.breaker_store import BreakerState, BreakerStore, Bucket

THREADS, BUMPS = 8, 200


class BreakerStoreContract:
    @pytest.fixture
    def store(self) -> BreakerStore:
        raise NotImplementedError("override the store fixture: the BreakerStore under test")

    def test_store_starts_every_key_closed(self, store: BreakerStore) -> None:
        assert store.get("never-written") == BreakerState()

    def test_store_update_stores_the_new_state_and_returns_the_result(
        self, store: BreakerStore
    ) -> None:
        result = store.update("a", lambda s: (replace(s, phase="open", epoch=s.epoch + 1), "done"))
        assert result == "done"
        assert (store.get("a").phase, store.get("a").epoch) == ("open", 1)
        assert store.get("b") == BreakerState()  # keys are independent

    def test_store_updates_are_atomic_under_concurrency(self, store: BreakerStore) -> None:
        def bump() -> None:
            for _ in range(BUMPS):
                store.update("k", lambda s: (replace(s, consecutive=s.consecutive + 1), None))

        threads = [threading.Thread(target=bump) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=5.0)
        assert store.get("k").consecutive == THREADS * BUMPS

    def test_a_failing_change_changes_nothing(self, store: BreakerStore) -> None:
        store.update("k", lambda s: (replace(s, epoch=7), None))

        def broken(state: BreakerState) -> tuple[BreakerState, None]:
            raise RuntimeError("change failed")

        with pytest.raises(RuntimeError, match="change failed"):
            store.update("k", broken)
        assert store.get("k") == BreakerState(epoch=7)

    def test_a_state_round_trips_whole(self, store: BreakerStore) -> None:
        full = BreakerState(
            phase="half_open",
            epoch=12,
            consecutive=3,
            buckets=(Bucket(100.0, 4, 1), Bucket(101.5, 2, 2)),
            opened_until=1234.5,
            open_for_s=60.0,
            reopen_count=2,
            probe_until=1240.25,
            cooldown_until=1250.0,
        )
        assert store.update("full", lambda _: (full, "stored")) == "stored"
        assert store.get("full") == full
        store.update("full", lambda s: (replace(s, probe_until=None), None))
        assert store.get("full") == replace(full, probe_until=None)

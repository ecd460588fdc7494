"""What moving the shared state to Redis costs one operation, and what an outage costs (issue 13).

On a redis-server of its own on 127.0.0.1 (``ragkeel.testing.services.start_redis``, stopped
at the end), ``--ops`` operations per arm after 200 warm-up ones, in-process vs Redis:

- ``limits``: ``TenantLimiter.admit`` + ``settle`` (requests and tokens per minute);
- ``accounts``: ``reserve`` + ``settle`` of a small amount against a daily budget;
- ``breaker admit``: ``update`` with the breaker's ``admit`` on a closed breaker (a read only);
- ``breaker record``: ``update`` with ``record`` of a success (a read-modify-write).

Then the outage: Redis stopped, the time of the first operation of each use (a refused
connection, logged and counted), and of operations during the pause that follows (no Redis call
at all). p50/p95 in microseconds. Prints one JSON object.

    PYTHONPATH=$PWD/src:$PWD/bench .venv/bin/python bench/shared_state.py [--ops 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from common import commit, machine, pct, today
from ragkeel.admission.accounts import Accounts, CostAccounts
from ragkeel.admission.redis_accounts import RedisCostAccounts
from ragkeel.admission.tenant_limits import TenantLimiter, TenantLimits, shared_storage
from ragkeel.errors import BudgetUnavailableError
from ragkeel.gateway.breaker_store import (
    BreakerPolicy,
    BreakerStore,
    InMemoryBreakerStore,
    Ticket,
    admit,
    record,
)
from ragkeel.gateway.redis_breaker_store import RedisBreakerStore
from ragkeel.shared_state import Outage, SharedState, connect
from ragkeel.testing import services

WARMUP = 200
LIMITS = TenantLimits(requests=10**9, tokens=10**12, window_s=60)
POLICY = BreakerPolicy()


def timed(op: Callable[[], Any], n: int) -> dict[str, float]:
    for _ in range(WARMUP):
        op()
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        op()
        samples.append((time.perf_counter() - began) * 1e6)
    return {"p50_us": round(pct(samples, 50), 1), "p95_us": round(pct(samples, 95), 1)}


def ops(
    limiter: TenantLimiter, accounts: Accounts, breakers: BreakerStore
) -> dict[str, Callable[[], Any]]:
    def limit() -> None:
        limiter.settle(limiter.admit("t", estimated_tokens=100), 90)

    def account() -> None:
        accounts.settle(accounts.reserve("t", 1e-6), 1e-6)

    def breaker_admit() -> None:
        breakers.update("d", lambda s: admit(s, time.time(), POLICY, "d"))

    def breaker_record() -> None:
        breakers.update(
            "d",
            lambda s: record(s, Ticket(s.epoch, False), "success", time.time(), None, POLICY, "d"),
        )

    return {
        "limits": limit,
        "accounts": account,
        "breaker admit": breaker_admit,
        "breaker record": breaker_record,
    }


def redis_arm(shared: SharedState) -> dict[str, Callable[[], Any]]:
    limiter = TenantLimiter(LIMITS, storage=shared_storage(shared), outage=shared.outage)
    return ops(limiter, RedisCostAccounts(shared, 10**9), RedisBreakerStore(shared))


def outage(shared: SharedState, server: services.Redis, n: int) -> dict[str, Any]:
    arm = redis_arm(shared)
    server.stop()
    out: dict[str, Any] = {}
    for name, op in arm.items():
        shared.outage._down_until = -float("inf")  # each use meets the refusal itself
        began = time.perf_counter()
        with contextlib.suppress(BudgetUnavailableError):  # accounts fail closed
            op()
        first = (time.perf_counter() - began) * 1e6
        paused = []
        for _ in range(n):
            began = time.perf_counter()
            with contextlib.suppress(BudgetUnavailableError):
                op()
            paused.append((time.perf_counter() - began) * 1e6)
        out[name] = {
            "first_us": round(first, 1),
            "paused_p50_us": round(pct(paused, 50), 1),
            "paused_p95_us": round(pct(paused, 95), 1),
        }
    out["errors_counted"] = dict(shared.outage.errors)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=5000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the outage's log lines are not what is measured
    server = services.start_redis()
    shared = connect(server.url, prefix="bench:", outage=Outage(pause_s=3600))
    stopped = False
    try:
        memory = ops(TenantLimiter(LIMITS), CostAccounts(10**9), InMemoryBreakerStore())
        redis = redis_arm(shared)
        result: dict[str, Any] = {
            "date": today(),
            "commit": commit(),
            "machine": machine(),
            "ops": args.ops,
            "memory": {name: timed(op, args.ops) for name, op in memory.items()},
            "redis": {name: timed(op, args.ops) for name, op in redis.items()},
        }
        stopped = True  # outage() stops it: never twice (its PID may be reused meanwhile)
        result["outage"] = outage(shared, server, min(args.ops, 1000))
    finally:
        shared.close()
        if not stopped:
            server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

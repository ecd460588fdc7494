"""What the gateway adds to a model call (issue 5, "Figures"), in process, over HTTP on 127.0.0.1
against ``FaultServer``s answering at once (0 ms upstream):

1. **Stack overhead**: the bare ``OpenAICompatChatModel`` vs the full stack ``build_gateway``
   composes (router off > budget > fallback > retry > breaker > metering > the same client), one
   deployment (``gpt-4o``) plus a fallback (``gpt-4o-mini``), both on healthy servers. Target:
   <= 1 ms added at p50.
2. **Open breaker** (scenario 3): the primary is hard down and its breaker open (opened by a few
   warm-up calls, open for an hour so it stays open); the fallback answers. Calling the fallback
   directly vs through the stack (breaker rejects, fallback answers). Target: < 5 ms added at p99.

Load is open loop: calls start on a fixed schedule (``--rate`` a second, default 200) whatever
the previous calls are doing, on a pool of worker threads, so a slow call does not slow the
offered load. The two variants of each figure run in alternating blocks of ``--block-s`` seconds
(order A B B A ...), so background load on the shared machine falls on both alike. Latency is
the call's own time (``perf_counter`` around ``complete``), after ``--warmup`` untimed calls per
variant; ``late p99`` is how far behind schedule calls started (the load generator keeping up).

The servers run in this process (threads), so client and server share the GIL: the absolute
figures are a loaded single process on 2 cores, the *difference* is the gateway's cost.

    .venv/bin/python bench/gateway_overhead.py [--seconds 20] [--rate 200] [--block-s 0.1]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common import commit, machine, pct, today
from ragkeel.container import deployments_of
from ragkeel.gateway.base import ChatMessage, ChatModel, ChatRequest
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.gateway.pricing import PriceTable
from ragkeel.gateway.providers.openai_compat import OpenAICompatChatModel
from ragkeel.gateway.stack import GatewayStack, build_gateway
from ragkeel.settings import load_settings
from ragkeel.testing import FaultServer

QUESTION = "What is the capital of France?"
WORKERS = 16
Call = Callable[[], object]


def ask() -> ChatRequest:
    """The request of every figure."""
    return ChatRequest(
        (ChatMessage("user", QUESTION),),
        max_tokens=64,
        timeout_s=5.0,
        deadline=time.monotonic() + 120.0,
    )


def recorded_complete(model: ChatModel, request: ChatRequest) -> CallLog:
    """``model.complete(request)`` recording into a ``CallLog``, as the answer flow does."""
    with recording(CallLog()) as log:
        model.complete(request)
    return log


def build_stack(
    primary_url: str,
    fallback_url: str,
    *,
    breaker: dict[str, Any] | None = None,
    retry: dict[str, Any] | None = None,
) -> GatewayStack:
    """``build_gateway`` over two OpenAI-compatible deployments, as a ``ragkeel.yaml`` with
    ``gateway.deployments: [primary (gpt-4o), fallback (gpt-4o-mini)]`` would build it. Default
    policies unless ``breaker`` / ``retry`` override some of their settings."""
    deployments = [
        {"name": name, "model": model, "base_url": url, "timeout_s": 5.0}
        for name, model, url in (
            ("primary", "gpt-4o", primary_url),
            ("fallback", "gpt-4o-mini", fallback_url),
        )
    ]
    gateway: dict[str, Any] = {"deployments": deployments}
    if breaker:
        gateway["breaker"] = breaker
    if retry:
        gateway["retry"] = retry
    settings = load_settings(gateway=gateway, generation={"provider": "openai"})
    stack = build_gateway(settings.gateway, deployments_of(settings), PriceTable.with_defaults())
    if stack is None:
        raise RuntimeError("build_gateway returned no model for two deployments")
    return stack


def bare_client(url: str, model: str) -> OpenAICompatChatModel:
    return OpenAICompatChatModel(url, model, api_key=None, timeout_s=5.0)


def calling(model: ChatModel) -> Call:
    return lambda: recorded_complete(model, ask())


def open_loop(
    variants: dict[str, Call], *, rate: float, seconds: float, block_s: float
) -> dict[str, Any]:
    """Run each variant for ``seconds`` at ``rate`` calls/s in alternating blocks (A B B A ...);
    latency samples in ms per variant, and how late calls started (ms)."""
    names = list(variants)
    per_block = max(int(rate * block_s), 1)
    blocks = max(int(seconds / block_s), 1)
    order = [
        names[(b + b // 2) % 2] if len(names) == 2 else names[b % len(names)]
        for b in range(blocks * len(names))
    ]
    samples: dict[str, list[float]] = {n: [] for n in names}
    late: list[float] = []
    failures: dict[str, int] = {n: 0 for n in names}
    lock = threading.Lock()

    def one(name: str, due: float) -> None:
        start = time.perf_counter()
        late.append((start - due) * 1000)
        try:
            variants[name]()
        except Exception:  # counted and reported: a failed call has no latency sample
            with lock:
                failures[name] += 1
            return
        samples[name].append((time.perf_counter() - start) * 1000)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        t0 = time.perf_counter()
        for i in range(len(order) * per_block):
            due = t0 + i / rate
            time.sleep(max(due - time.perf_counter(), 0.0))
            pool.submit(one, order[i // per_block], due)
    return {"samples": samples, "late_p99_ms": pct(late, 99), "failures": failures}


def warm(variants: dict[str, Call], n: int) -> None:
    for _ in range(n):
        for call in variants.values():
            call()


def summary(samples: list[float]) -> dict[str, float]:
    return {"n": len(samples), "p50_ms": pct(samples, 50), "p99_ms": pct(samples, 99)}


def stack_overhead(args: argparse.Namespace) -> dict[str, Any]:
    with FaultServer(seed=1) as primary, FaultServer(seed=2) as fallback:
        stack = build_stack(primary.base_url, fallback.base_url)
        bare = bare_client(primary.base_url, "gpt-4o")
        variants = {"bare client": calling(bare), "full stack": calling(stack.model)}
        try:
            warm(variants, args.warmup)
            run = open_loop(variants, rate=args.rate, seconds=args.seconds, block_s=args.block_s)
            run["fallback_calls"] = fallback.stats.requests  # 0: the primary served every call
        finally:
            stack.close()
            bare.close()
    return run


def open_breaker_overhead(args: argparse.Namespace) -> dict[str, Any]:
    with FaultServer(seed=1) as primary, FaultServer(seed=2) as fallback:
        primary.set(down=True)
        breaker = {"consecutive_failures": 3, "open_s": 3600.0, "max_open_s": 3600.0}
        stack = build_stack(primary.base_url, fallback.base_url, breaker=breaker)
        direct = bare_client(fallback.base_url, "gpt-4o-mini")
        variants = {
            "fallback directly": calling(direct),
            "stack, breaker open": calling(stack.model),
        }
        try:
            warm(variants, args.warmup)  # the first stack call fails 3 times: the breaker opens
            states = {s["deployment"]: s["state"] for s in stack.readiness()}
            reached = primary.stats.requests + primary.stats.refused
            run = open_loop(
                variants, rate=args.rate, seconds=args.seconds / 2, block_s=args.block_s
            )
            run["breaker_states"] = states
            run["primary_calls_during_run"] = (
                primary.stats.requests + primary.stats.refused - reached
            )
        finally:
            stack.close()
            direct.close()
    return run


def table(title: str, run: dict[str, Any]) -> str:
    rows = {name: summary(s) for name, s in run["samples"].items()}
    (a, ra), (b, rb) = rows.items()
    lines = [
        f"| {title} | n | p50 ms | p99 ms |",
        "|---|---:|---:|---:|",
        *(f"| {n} | {r['n']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |" for n, r in rows.items()),
        f"| added by the gateway | | {rb['p50_ms'] - ra['p50_ms']:+.3f} | {rb['p99_ms'] - ra['p99_ms']:+.3f} |",
    ]
    extra = {k: v for k, v in run.items() if k != "samples"}
    return "\n".join(lines) + f"\n\n({a} vs {b}; {json.dumps(extra)})\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per variant (figure 1)")
    parser.add_argument("--rate", type=float, default=200.0, help="calls started per second")
    parser.add_argument("--block-s", type=float, default=0.1, help="alternating block length")
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls per variant")
    args = parser.parse_args()
    print(
        f"{today()}, {machine()}, commit {commit()}, rate {args.rate:g}/s, blocks {args.block_s:g} s\n"
    )
    print(table("1. stack overhead (0 ms upstream)", stack_overhead(args)))
    print(table("3. open breaker (primary down)", open_breaker_overhead(args)))


if __name__ == "__main__":
    main()

"""ragkeel's gateway side by side with LiteLLM's ``Router`` on the same fault-injecting servers
(issue 5, "Figures"), in one run:

1. overhead at 0 ms upstream: a direct HTTP call vs the same call through the gateway (p50/p99);
2. scenario 1: primary 503 on 30 % of calls, fallback healthy: success rate, primary attempts
   per request (``--requests``, default 2,000, on 16 threads);
3. scenario 3: primary hard down: the first request after it went down, then steady state
   (per-request latency, primary attempts per request);
4. scenario 8: the primary's stream is cut after 30 % of its tokens: what the caller sees
   (continued on the fallback / explicit error / silently truncated "success"), N streams each.

The two ``FaultServer``s (primary, fallback) run in this process; each gateway runs in its own
client process that speaks the same line protocol (see ``bench/litellm_driver.py``): LiteLLM
in ``bench/out/litellm-venv`` (never ragkeel's venv), ragkeel in ``.venv`` (this script with
``--driver``). So neither client shares a GIL with the servers, and server counters (requests,
refused connections) are read here between commands. Phases alternate between the two systems.

Configuration, as close as the two allow (printed with the results):

* both: 2 retries on the primary, then the fallback deployment; 5 s per attempt.
* ragkeel: ``build_gateway`` defaults (backoff 0.25 s base, full jitter, 8 s cap) except:
  scenario 1 breaker 15 consecutive failures / 50 % over >= 100 calls and no retry budget
  (``budget_ratio`` 10) as in its scenario test; scenario 3 breaker 3 consecutive failures,
  open 30 s.
* LiteLLM, column "litellm": ``num_retries=2`` (set explicitly), ``fallbacks=[{"primary":
  ["fallback"]}]``, ``timeout=5`` per deployment; changed from its defaults: scenario 1
  ``allowed_fails=15`` and scenario 3 ``allowed_fails=3`` (default 3 a minute), both
  ``cooldown_time=30`` (default 5 s), as ragkeel's breaker thresholds and open period;
  scenario 8 ``enable_mid_stream_fallback_continuation=True`` (default off). Backoff: its own
  (0.5 s x 2^n + up to 0.75 s jitter, 8 s cap), unchanged. Column "litellm (defaults)": only
  ``num_retries=2`` and the fallbacks.

    .venv/bin/python bench/litellm_compare.py [--requests 2000] [--streams 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from common import REPO, commit, machine, pct, today
from ragkeel.errors import ChatModelError
from ragkeel.gateway.calllog import CallLog, recording
from ragkeel.testing import FaultServer, FaultSettings

LITELLM_PY = REPO / "bench" / "out" / "litellm-venv" / "bin" / "python"
LONG = (
    "The Eiffel Tower was built for the 1889 World's Fair in Paris and was at the time the "
    "tallest structure in the world, a title it held until 1930 [1]."
)
FALLBACK_REPLY = " and it is still the most visited paid monument in the world [2]."
S1_RAGKEEL = {
    "breaker": {"consecutive_failures": 15, "failure_rate": 0.5, "min_calls": 100},
    "retry": {"budget_ratio": 10.0},
}
S3_RAGKEEL = {"breaker": {"consecutive_failures": 3, "open_s": 30.0}}
S1_LITELLM = {"num_retries": 2, "allowed_fails": 15, "cooldown_time": 30}
S3_LITELLM = {"num_retries": 2, "allowed_fails": 3, "cooldown_time": 30}


class Driver:
    """A client process speaking the line protocol of ``bench/litellm_driver.py``."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        env = {
            **os.environ,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "PYTHONPATH": str(REPO / "bench"),
        }
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.hello = self.call(None)

    def call(self, cmd: dict[str, Any] | None) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if cmd is not None:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("@@"):
                return json.loads(line[2:])
        raise RuntimeError(f"{self.name} driver exited ({self.proc.wait()})")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write('{"op": "quit"}\n')
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def reached(server: FaultServer) -> int:
    """Calls that reached the server, read or refused while it was down."""
    return server.stats.requests + server.stats.refused


def fresh(
    driver: Driver, servers: tuple[FaultServer, FaultServer], config: dict[str, Any], **kw: Any
) -> None:
    primary, fallback = servers
    driver.call(
        {"op": "router", "primary": primary.base_url, "fallback": fallback.base_url, **config, **kw}
    )


def overhead(
    drivers: list[Driver], servers: tuple[FaultServer, FaultServer], n: int, rounds: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for d in drivers:
        fresh(d, servers, {"router": {"num_retries": 2}} if d.name == "litellm" else {})
        d.call({"op": "overhead", "n": 100, "rate": 200})  # warm-up
    for _ in range(rounds):
        for d in drivers:
            result = d.call({"op": "overhead", "n": n, "rate": 200})
            for key, samples in result.items():
                out.setdefault(d.name, {}).setdefault(key, []).extend(samples)
    return {
        name: {
            k: {"n": len(v), "p50_ms": pct(v, 50), "p99_ms": pct(v, 99)} for k, v in parts.items()
        }
        for name, parts in out.items()
    }


def scenario_1(
    d: Driver, servers: tuple[FaultServer, FaultServer], requests: int, config: dict[str, Any]
) -> dict[str, Any]:
    primary, fallback = servers
    primary.set(FaultSettings(error_rate=0.3, error="503"))
    fresh(d, servers, config)
    before, fb_before, start = reached(primary), reached(fallback), time.perf_counter()
    rows = d.call({"op": "complete", "n": requests, "threads": 16})
    ok = [r for r in rows if r["ok"]]
    return {
        "requests": requests,
        "succeeded": len(ok),
        "primary_attempts_per_request": (reached(primary) - before) / requests,
        "fallback_calls": reached(fallback) - fb_before,
        "errors": sorted({r["error"] for r in rows if not r["ok"]}),
        "latency_p50_ms": pct([r["ms"] for r in rows], 50),
        "latency_p99_ms": pct([r["ms"] for r in rows], 99),
        "wall_s": time.perf_counter() - start,
    }


def scenario_3(
    d: Driver, servers: tuple[FaultServer, FaultServer], steady: int, config: dict[str, Any]
) -> dict[str, Any]:
    primary, _ = servers
    primary.set(FaultSettings())
    fresh(d, servers, config)
    d.call({"op": "complete", "n": 5, "threads": 1})  # healthy warm-up: connections open
    primary.set(down=True)
    before = reached(primary)
    first = d.call({"op": "complete", "n": 1, "threads": 1})[0]
    after_first = reached(primary)
    rows = d.call({"op": "complete", "n": steady, "threads": 1})
    ms = [r["ms"] for r in rows]
    return {
        "first": {"ok": first["ok"], "ms": first["ms"], "primary_attempts": after_first - before},
        "steady": {
            "requests": steady,
            "succeeded": sum(r["ok"] for r in rows),
            "p50_ms": pct(ms, 50),
            "p99_ms": pct(ms, 99),
            "max_ms": max(ms),
            "primary_attempts_per_request": (reached(primary) - after_first) / steady,
        },
    }


def classify(row: dict[str, Any]) -> str:
    text = row["text"]
    if row["error"]:
        return "explicit error"
    if text == LONG:
        return "complete (no cut)"
    if text.endswith(FALLBACK_REPLY) and LONG.startswith(text[: -len(FALLBACK_REPLY)]):
        return (
            "continued on the fallback"
            if text != FALLBACK_REPLY
            else "answered by the fallback alone"
        )
    if LONG.startswith(text):
        return "silently truncated success"
    return "other"


def scenario_8(
    d: Driver, servers: tuple[FaultServer, FaultServer], n: int, config: dict[str, Any]
) -> dict[str, Any]:
    primary, fallback = servers
    primary.set(FaultSettings(reply=LONG, disconnect_after=0.3))
    fallback.set(FaultSettings(reply=FALLBACK_REPLY))
    fresh(d, servers, config)
    rows = d.call({"op": "stream", "n": n})
    outcomes = Counter(classify(row) for row in rows)
    return {"streams": n, "outcomes": outcomes, "example": rows[0]}


# -- the ragkeel side of the line protocol (``--driver``): the ops of bench/litellm_driver.py --


def serve() -> None:
    state: dict[str, Any] = {}
    print("@@" + json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        print("@@" + json.dumps(handle(cmd, state)), flush=True)
    if "stack" in state:
        state["stack"].close()


def handle(cmd: dict[str, Any], state: dict[str, Any]) -> Any:
    from gateway_overhead import ask, bare_client, build_stack, recorded_complete

    if cmd["op"] == "router":
        if "stack" in state:
            state["stack"].close()
        breaker, retry = cmd.get("breaker"), cmd.get("retry")
        state["stack"] = build_stack(cmd["primary"], cmd["fallback"], breaker=breaker, retry=retry)
        state["bare"] = bare_client(cmd["primary"], "gpt-4o")
        return {"ok": True}
    model = state["stack"].model
    if cmd["op"] == "overhead":
        calls = {
            "direct": lambda: state["bare"].complete(ask()),
            "router": lambda: recorded_complete(model, ask()),
        }
        times: dict[str, list[float]] = {"direct": [], "router": []}
        for i in range(int(cmd["n"])):
            due = time.perf_counter() + 1.0 / float(cmd["rate"])
            key = "direct" if i % 2 == 0 else "router"
            start = time.perf_counter()
            calls[key]()
            times[key].append((time.perf_counter() - start) * 1000)
            time.sleep(max(due - time.perf_counter(), 0.0))
        return times

    def one(_: int) -> dict[str, Any]:
        request, start = ask(), time.perf_counter()
        try:
            log = recorded_complete(model, request)
        except ChatModelError as exc:
            return {"ok": False, "ms": (time.perf_counter() - start) * 1000, "error": exc.code}
        return {
            "ok": True,
            "ms": (time.perf_counter() - start) * 1000,
            "served": log.served_by,
        }

    if cmd["op"] == "complete":
        with ThreadPoolExecutor(max_workers=int(cmd.get("threads", 1))) as pool:
            return list(pool.map(one, range(int(cmd["n"]))))
    if cmd["op"] == "stream":
        return [stream_one(model) for _ in range(int(cmd["n"]))]
    raise ValueError(f"unknown op {cmd['op']!r}")


def stream_one(model: Any) -> dict[str, Any]:
    from gateway_overhead import ask

    text: list[str] = []
    finish: list[str] = []
    error = None
    try:
        with recording(CallLog()):  # as the answer flow records
            for chunk in model.stream(ask()):
                text.append(chunk.text_delta)
                if chunk.finish_reason:
                    finish.append(chunk.finish_reason)
    except ChatModelError as exc:
        error = f"{exc.code}: {str(exc)[:160]}"
    return {"text": "".join(text), "error": error, "finish_reasons": finish}


def run(args: argparse.Namespace) -> dict[str, Any]:
    me = [sys.executable, str(Path(__file__).resolve()), "--driver"]
    lite = Driver("litellm", [str(LITELLM_PY), str(REPO / "bench" / "litellm_driver.py")])
    ours = Driver("ragkeel", me)
    defaults = {"router": {"num_retries": 2}}
    systems = [  # column, driver, scenario 1, scenario 3, scenario 8 configuration
        ("ragkeel", ours, S1_RAGKEEL, S3_RAGKEEL, {}),
        (
            "litellm",
            lite,
            {"router": S1_LITELLM},
            {"router": S3_LITELLM},
            {**defaults, "continuation": True},
        ),
        ("litellm (defaults)", lite, defaults, defaults, defaults),
    ]
    results: dict[str, Any] = {
        "litellm_version": lite.hello.get("version"),
        "load_before": os.getloadavg(),
    }
    with FaultServer(seed=1) as primary, FaultServer(seed=2) as fallback:
        servers = (primary, fallback)
        try:
            print("overhead...", file=sys.stderr)
            results["overhead"] = overhead([ours, lite], servers, args.overhead_n, rounds=2)
            for column, d, s1, s3, s8 in systems:
                print(f"{column}: scenarios 1, 3, 8...", file=sys.stderr)
                results.setdefault("scenario_1", {})[column] = scenario_1(
                    d, servers, args.requests, s1
                )
                results.setdefault("scenario_3", {})[column] = scenario_3(
                    d, servers, args.steady, s3
                )
                results.setdefault("scenario_8", {})[column] = scenario_8(
                    d, servers, args.streams, s8
                )
        finally:
            ours.close()
            lite.close()
    results["load_after"] = os.getloadavg()
    results["configuration"] = {column: [s1, s3, s8] for column, _, s1, s3, s8 in systems}
    return results


def report(r: dict[str, Any]) -> str:
    columns = list(r["scenario_1"])
    o, s1, s3 = r["overhead"], r["scenario_1"], r["scenario_3"]

    def ms(part: dict[str, float]) -> str:
        return f"{part['p50_ms']:.2f} / {part['p99_ms']:.2f}"

    cells = [
        ("direct call p50 / p99 ms", lambda x: ms(o[x]["direct"]) if x in o else "same"),
        ("through the gateway p50 / p99 ms", lambda x: ms(o[x]["router"]) if x in o else "same"),
        ("s1 success", lambda x: f"{s1[x]['succeeded']}/{s1[x]['requests']}"),
        ("s1 primary attempts / request", lambda x: f"{s1[x]['primary_attempts_per_request']:.3f}"),
        (
            "s1 latency p50 / p99 ms",
            lambda x: f"{s1[x]['latency_p50_ms']:.0f} / {s1[x]['latency_p99_ms']:.0f}",
        ),
        (
            "s3 first request ms (primary attempts)",
            lambda x: f"{s3[x]['first']['ms']:.0f} ({s3[x]['first']['primary_attempts']})",
        ),
        (
            "s3 steady p50 / max ms",
            lambda x: f"{s3[x]['steady']['p50_ms']:.1f} / {s3[x]['steady']['max_ms']:.1f}",
        ),
        (
            "s3 steady primary attempts / request",
            lambda x: f"{s3[x]['steady']['primary_attempts_per_request']:.2f}",
        ),
        ("s8 what the caller saw", lambda x: json.dumps(r["scenario_8"][x]["outcomes"])),
    ]
    head = ["| |" + "|".join(f" {c} " for c in columns) + "|", "|---|" + "---|" * len(columns)]
    rows = [f"| {label} |" + "|".join(f" {f(c)} " for c in columns) + "|" for label, f in cells]
    return "\n".join(head + rows) + f"\n\nLiteLLM {r['litellm_version']}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="scenario 1 requests")
    parser.add_argument("--steady", type=int, default=8, help="scenario 3 requests after the first")
    parser.add_argument("--streams", type=int, default=20, help="scenario 8 streams per system")
    parser.add_argument("--overhead-n", type=int, default=1000, help="calls per overhead round")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "litellm-compare.json")
    parser.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        serve()
        return
    print(f"{today()}, {machine()}, commit {commit()}\n")
    results = run(args)
    args.out.write_text(json.dumps(results, indent=2))
    print(report(results))
    print(
        f"(full results: {args.out}; load before/after {results['load_before']} / {results['load_after']})"
    )


if __name__ == "__main__":
    main()

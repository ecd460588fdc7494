"""``ragkeel serve`` against a black-holed provider (issue 9): one client asking one question at a
time over the served API, per-request latency before and after the fix.

Two ``FaultServer``s run in this process (``primary``, ``fallback``: OpenAI-compatible, on
127.0.0.1); ``ragkeel serve`` runs as a subprocess (the issue's repro is the served API) over a
fresh home with a three-document corpus (hashing embedder) and ``gateway.deployments`` =
[primary, fallback], everything else at its defaults (2 retries, breaker at 5 consecutive
failures open 30 s, ``max_retry_after_s`` 10, ``generation.model_timeout_s`` 60, deadline 120 s).
Each case starts a fresh server pair and a fresh ``ragkeel serve``; the client POSTs
``/v1/query`` sequentially with ``--pause`` seconds between requests, so the run spans the
breaker's open period and its first half-open probe.

Cases:

* ``healthy``: both deployments answer at once (the baseline: the first request of a fresh
  server also pays one-off loading, e.g. the budget's tokenizer vocabulary).
* ``blackhole``: the primary accepts connections and never answers; ``gateway.attempt_timeout_s``
  2 s (deployment ``timeout_s`` 30).
* ``timeout_s``: the same primary, no ``attempt_timeout_s``, the deployments' ``timeout_s`` 2.
  A request the client gave up on (``--client-timeout``) ends the case (the server may still be
  working on it).
* ``retry_after``: the primary answers 429 with ``Retry-After: 5`` to every request.

Each variant is a ``src`` tree run with ``PYTHONPATH``: ``after`` is this checkout's ``src``,
``before`` is ``git archive <--before REV> src`` extracted into a temporary directory.

    .venv/bin/python bench/gateway_blackhole.py --before e4a724d [--requests 40] [--pause 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from common import REPO, commit, machine, pct, today
from ragkeel.testing import FaultServer

REPLY = "Rotate every API key every ninety days [1]."
QUESTION = "How often should I rotate an API key?"
CORPUS = {
    "keys.md": "# API keys\n\nRotate every API key every ninety days. Rotation is done from the "
    "admin console under Security.\n\n## Revoking keys\n\nRevoke a leaked key at once.\n",
    "outage.txt": "Upstream outage postmortem.\n\nOn 3 March the model provider failed for "
    "forty minutes. Fallback models served answers during the outage.\n",
    "pricing.md": "# Pricing\n\nEach query costs tokens. The monthly budget is set per tenant.\n",
}
ATTEMPT_S = 2.0
CASES = ("healthy", "blackhole", "timeout_s", "retry_after")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def extract_src(rev: str, into: Path) -> Path:
    """``src`` of commit ``rev``, extracted under ``into``."""
    tar = subprocess.run(
        ["git", "archive", rev, "src"], cwd=REPO, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(into, filter="data")
    return into / "src"


def config(case: str, primary: FaultServer, fallback: FaultServer) -> dict[str, Any]:
    timeout = ATTEMPT_S if case == "timeout_s" else 30.0
    gateway: dict[str, Any] = {
        "deployments": [
            {"name": name, "model": "gpt-4o-mini", "base_url": s.base_url, "timeout_s": timeout}
            for name, s in (("primary", primary), ("fallback", fallback))
        ]
    }
    if case in ("healthy", "blackhole"):
        gateway["attempt_timeout_s"] = ATTEMPT_S
    return {
        "embedding": {"provider": "hashing", "hashing_dimension": 256, "cache": False},
        "ingestion": {"chunk_tokens": 64},
        "generation": {"provider": "openai", "gate_threshold": 0.2},
        "gateway": gateway,
    }


@contextlib.contextmanager
def serving(src: Path, home: Path, cfg: dict[str, Any]) -> Iterator[str]:
    """``ragkeel serve`` from ``src`` over ``home`` (ingested first); yields its base URL."""
    home.mkdir(parents=True)
    docs = home / "docs"
    docs.mkdir()
    for name, text in CORPUS.items():
        (docs / name).write_text(text, encoding="utf-8")
    (home / "ragkeel.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "RAGKEEL_HOME": str(home / "data"),
        "RAGKEEL_CONFIG": str(home / "ragkeel.yaml"),
    }
    ragkeel = [sys.executable, "-m", "ragkeel"]
    subprocess.run(
        [*ragkeel, "ingest", str(docs), "-c", "kb"], env=env, check=True, capture_output=True
    )
    port = free_port()
    log = (home / "serve.log").open("w")
    proc = subprocess.Popen(
        [*ragkeel, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ragkeel serve did not start: see {home / 'serve.log'}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def run_case(case: str, src: Path, home: Path, args: argparse.Namespace) -> dict[str, Any]:
    with FaultServer(seed=1) as primary, FaultServer(seed=2) as fallback:
        primary.set(reply=REPLY)
        fallback.set(reply=REPLY)
        if case == "retry_after":
            primary.set(error_rate=1.0, error="429", retry_after_s=5)
        elif case != "healthy":
            primary.set(error_rate=1.0, error="hang")
        rows: list[dict[str, Any]] = []
        with (
            serving(src, home, config(case, primary, fallback)) as base,
            httpx.Client(base_url=base, timeout=args.client_timeout) as client,
        ):
            client.post("/v1/search", json={"query": QUESTION, "collection": "kb"})  # warm-up
            for i in range(args.requests):
                if i:
                    time.sleep(args.pause)
                started = time.monotonic()
                try:
                    r = client.post("/v1/query", json={"question": QUESTION, "collection": "kb"})
                except httpx.TimeoutException:
                    rows.append({"s": time.monotonic() - started, "gave_up": True})
                    break  # the server may still hold it: the case ends here
                body = r.json()
                attempts = (body.get("gateway") or {}).get("attempts") or []
                rows.append(
                    {
                        "s": time.monotonic() - started,
                        "status": r.status_code,
                        "served_by": body.get("served_by"),
                        "primary_calls": sum(
                            1
                            for a in attempts
                            if a["deployment"] == "primary" and a["outcome"] != "rejected"
                        ),
                    }
                )
        return {"rows": rows, "primary_requests": primary.stats.requests, **summary(rows)}


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [r["s"] for r in rows]
    return {
        "n": len(rows),
        "first_s": seconds[0] if seconds else None,
        "p50_s": pct(seconds, 50),
        "p95_s": pct(seconds, 95),
        "p95_first10_s": pct(seconds[:10], 95),  # before the breaker's open period dominates
        "max_s": max(seconds) if seconds else None,
        "over_target": sum(s > ATTEMPT_S + 1.0 for s in seconds),
        "gave_up": sum(bool(r.get("gave_up")) for r in rows),
        "served_by": {
            k: sum(r.get("served_by") == k for r in rows)
            for k in sorted({str(r.get("served_by")) for r in rows if "served_by" in r})
        },
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| case | variant | n | first (s) | p50 (s) | p95 (s) | p95 first 10 (s) | max (s) "
        "| > 3 s | served_by |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, r in results.items():
        case, variant = key.split("/")
        served = [f"{k} {v}" for k, v in r["served_by"].items()]
        if r["gave_up"]:
            served.append(f"no answer within {r['max_s']:.0f} s: {r['gave_up']}")
        lines.append(
            f"| {case} | {variant} | {r['n']} | {r['first_s']:.2f} | {r['p50_s']:.2f} "
            f"| {r['p95_s']:.2f} | {r['p95_first10_s']:.2f} | {r['max_s']:.2f} "
            f"| {r['over_target']} | {', '.join(served)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="git revision whose src is the 'before' variant")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between requests")
    parser.add_argument("--client-timeout", type=float, default=15.0)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "blackhole.json")
    parser.add_argument("--table", type=Path, help="only print the table of a saved --out file")
    args = parser.parse_args()
    if args.table:
        saved = json.loads(args.table.read_text())
        print(json.dumps(saved["meta"]))
        print(table({k: {**summary(r["rows"]), **r} for k, r in saved["results"].items()}))
        return

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="blackhole-") as tmp:
        variants = {"after": REPO / "src"}
        if args.before:
            variants = {"before": extract_src(args.before, Path(tmp) / "before"), **variants}
        for case in args.cases:
            for name, src in variants.items():
                key = f"{case}/{name}"
                print(f"{key} ...", file=sys.stderr, flush=True)
                results[key] = run_case(case, src, Path(tmp) / key.replace("/", "-"), args)
                print(f"  {json.dumps({k: v for k, v in results[key].items() if k != 'rows'})}")
    meta = {
        "date": today(),
        "commit": commit(),
        "before": args.before,
        "machine": machine(),
        "requests": args.requests,
        "pause_s": args.pause,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(json.dumps(meta))
    print(table(results))


if __name__ == "__main__":
    main()

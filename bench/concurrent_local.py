"""Four concurrent questions to ``ragkeel serve`` on the local 1.5B model (issue 9): each one's
HTTP status, wall time, whether it was refused (and its Retry-After), degraded (and why), and
the time it spent queued for the model. Default settings (request deadline 120 s, 256 answer
tokens, ``generation.local.max_queue`` 2), the examples/ collection, one server process.

    .venv/bin/python bench/concurrent_local.py [--src DIR] [--label after] [--n 4] [--deadline S]

``--src`` runs another checkout's code (its ``src/``) against the same data and model, e.g. the
commit before issue 9 from a ``git worktree``, for the before/after table. Every configuration
gets a fresh home; the model files are read from the user-level models directory
(``ragkeel.models.cache.default_models_dir()``, where ``make setup`` installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from common import REPO, commit, machine, today
from ragkeel.models.cache import default_models_dir

MODELS_DIR = default_models_dir()

QUESTIONS = [
    "How do I rotate an API key?",
    "What happened during the upstream provider outage?",
    "What are the rate limits of the API?",
    "Which services does the on-call engineer own?",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(src: Path, n: int, deadline_s: float | None = None) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="ragkeel-bench-") as tmp:
        env = {
            **os.environ,
            "PYTHONPATH": str(src),
            "RAGKEEL_HOME": tmp,
            "RAGKEEL_MODELS__DIR": str(MODELS_DIR),
        }
        if src.resolve() != (REPO / "src").resolve():  # code before issue 10 knows only this name
            env["RAGKEEL_GENERATION__LOCAL__MODELS_DIR"] = str(MODELS_DIR)
        if deadline_s is not None:
            env["RAGKEEL_GATEWAY__REQUEST_DEADLINE_S"] = str(deadline_s)
        ragkeel = [sys.executable, "-m", "ragkeel"]
        subprocess.run(
            [*ragkeel, "ingest", str(REPO / "examples"), "--collection", "examples"],
            env=env,
            check=True,
            capture_output=True,
        )
        port = _free_port()
        server = subprocess.Popen(
            [*ragkeel, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_loaded(base)
            rows: list[dict[str, Any]] = []
            start = threading.Barrier(n)

            def ask(i: int) -> None:
                body = {"question": QUESTIONS[i % len(QUESTIONS)], "collection": "examples"}
                start.wait()
                began = time.perf_counter()
                r = httpx.post(f"{base}/v1/query", json=body, timeout=600)
                row: dict[str, Any] = {
                    "i": i,
                    "status": r.status_code,
                    "seconds": round(time.perf_counter() - began, 2),
                    "retry_after": r.headers.get("retry-after"),
                }
                out = r.json()
                if r.status_code == 200:
                    lat = out.get("latency_ms", {})
                    row.update(
                        mode=out["mode"],
                        degraded=out.get("degraded_reason"),
                        queue_s=round(lat.get("queue", 0.0) / 1000, 2),
                        generate_s=round(lat.get("generate", 0.0) / 1000, 2),
                    )
                else:
                    row["code"] = out.get("code")
                rows.append(row)

            threads = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return sorted(rows, key=lambda r: r["seconds"])
        finally:
            server.terminate()
            server.wait(60)


def _wait_loaded(base: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"{base}/readyz", timeout=2).json()
            if ready["model"].get("loaded"):
                return
        except (httpx.TransportError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not load the model within 180 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--src", type=Path, default=REPO / "src")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--deadline", type=float, help="gateway.request_deadline_s (default 120)")
    args = parser.parse_args()
    rows = run(args.src.resolve(), args.n, args.deadline)
    deadline = f"deadline {args.deadline or 120:g} s"
    print(f"# {args.label}, {deadline} — {today()}, commit {commit()}, {machine()}")
    print("| request | status | wall s | queued s | generate s | outcome |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if r["status"] == 200:
            outcome = r["mode"] + (f", degraded {r['degraded']}" if r["degraded"] else "")
            queued, gen = r["queue_s"], r["generate_s"]
        else:
            outcome = f"{r['code']}, Retry-After {r['retry_after']}"
            queued, gen = "-", "-"
        print(f"| {r['i'] + 1} | {r['status']} | {r['seconds']} | {queued} | {gen} | {outcome} |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

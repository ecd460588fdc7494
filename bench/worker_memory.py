"""Memory of ``ragkeel serve --workers N`` with the local model loaded in every worker, against
the same workers reaching one ``ragkeel model-server`` (``generation.local.base_url``), issue 13.

RSS counts every page a process maps, shared or not; PSS splits each shared page between the
processes sharing it, so the PSS of all processes adds up to the physical memory they use.
llama.cpp maps the GGUF file (``use_mmap``), so N workers share its page cache: what each
worker adds of its own is the KV cache and compute buffers. Figures from
``/proc/PID/smaps_rollup`` once every worker says its model is loaded (``/readyz``).

    PYTHONPATH=src python bench/worker_memory.py --workers 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ragkeel.testing.replicas import Replicas
from ragkeel.testing.services import free_port, stop_pid

ENV = {"RAGKEEL_EMBEDDING__PROVIDER": "hashing", "RAGKEEL_MONITOR__ENABLED": "false"}


def _rollup(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    return fields["Rss"] / 1024, fields["Pss"] / 1024


def _children(pid: int) -> list[int]:
    """The worker processes of uvicorn's supervisor ``pid`` (not its resource tracker)."""
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if "spawn_main" in Path(f"/proc/{child}/cmdline").read_text():
                out.append(int(child))
    return out


def _workers_loaded(url: str, n: int, timeout_s: float) -> None:
    """Until ``n`` fresh connections in a row say the model is loaded (any worker answers)."""
    deadline, streak = time.monotonic() + timeout_s, 0
    while streak < n * 4:
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not load the model in time")
        body = httpx.get(f"{url}/readyz", timeout=30).json()
        streak = streak + 1 if body.get("model", {}).get("loaded") else 0
        time.sleep(0.2)


def _report(label: str, pids: dict[str, int]) -> None:
    total_pss = 0.0
    for name, pid in pids.items():
        rss, pss = _rollup(pid)
        total_pss += pss
        print(f"{label:22} {name:14} RSS {rss:7.0f} MiB  PSS {pss:7.0f} MiB")
    print(f"{label:22} {'all':14} {'':16} PSS {total_pss:7.0f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ragkeel-bench-workers-"))
    n = args.workers
    env = {**ENV, "RAGKEEL_HOME": str(root / "home")}
    with Replicas(1, env, log_dir=root / "logs", args=["--workers", str(n)]) as (r,):
        _workers_loaded(r.url, n, args.timeout)
        _report("in-process model", {f"worker {i}": p for i, p in enumerate(_children(r.pid))})
    port = free_port()
    ms = subprocess.Popen(
        [sys.executable, "-m", "ragkeel", "model-server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + args.timeout
        while True:
            try:
                if httpx.get(f"{base}/models", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the model server did not start")
            time.sleep(0.5)
        shared = {**env, "RAGKEEL_GENERATION__LOCAL__BASE_URL": base}
        with Replicas(1, shared, log_dir=root / "logs2", args=["--workers", str(n)]) as (r,):
            pids = {f"worker {i}": p for i, p in enumerate(_children(r.pid))}
            _report("shared model server", {**pids, "model-server": ms.pid})
    finally:
        stop_pid(ms.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())

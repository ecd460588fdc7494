"""``ragkeel serve`` processes on free loopback ports, started with given settings and stopped
by PID (issue 13, "Stateless replicas"): the replica tests' harness and ``make cluster``'s.

Each replica is ``python -m ragkeel serve --host 127.0.0.1 --port P [--workers N]`` with the
caller's ``RAGKEEL_*`` variables added to this environment, in a session of its own (so its
worker processes, if any, can be stopped as one group), its output in a log file (a pipe
would hold a test forever once a worker outlives its parent). ``stop`` sends SIGTERM to the
replica's PID (it drains, ``cli/serve.py``), waits, then SIGKILLs the whole group: no worker
is left behind even when the replica hangs.

    with Replicas(2, env, log_dir=tmp_path) as (a, b):
        httpx.post(f"{a.url}/v1/documents", ...); httpx.post(f"{b.url}/v1/search", ...)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from ragkeel.testing.services import ServiceError, free_port, stop_pid

READY_TIMEOUT_S = 90.0  # one interpreter importing ragkeel on a loaded 2-core machine: ~25 s


@dataclass
class Replica:
    """One running ``ragkeel serve``."""

    name: str
    port: int
    pid: int
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S, path: str = "/readyz") -> None:
        """Until ``path`` answers 200; ``ServiceError`` with the log's tail if the process
        exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited:\n{self.log_text()[-4000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}{path}", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise ServiceError(f"{self.name} not ready in {timeout_s} s:\n{self.log_text()[-4000:]}")

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (a drain), up to ``timeout_s`` to exit, then SIGKILL to its process group."""
        stop_pid(self.pid, timeout_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # its workers, if the parent left any
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)


def start_replica(
    env: Mapping[str, str],
    *,
    name: str,
    log_dir: Path,
    port: int | None = None,
    args: Sequence[str] = (),
) -> Replica:
    """Start ``ragkeel serve`` on 127.0.0.1:``port`` (a free one by default) with ``env`` added
    to this environment; returns at once (``Replica.wait_ready``)."""
    port = port or free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    command = [sys.executable, "-m", "ragkeel", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, *args],
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Replica(name, port, proc.pid, log, proc)


class Replicas:
    """``n`` replicas over the same settings (``env``; ``each[i]`` adds replica ``i``'s own),
    started together, ready on entry, stopped by PID on exit."""

    def __init__(
        self,
        n: int,
        env: Mapping[str, str],
        *,
        log_dir: Path,
        each: Sequence[Mapping[str, str]] = (),
        args: Sequence[str] = (),
    ) -> None:
        self.n, self.env, self.log_dir, self.each, self.args = n, env, log_dir, each, args
        self.replicas: list[Replica] = []

    def __enter__(self) -> list[Replica]:
        try:
            for i in range(self.n):
                own = self.each[i] if i < len(self.each) else {}
                self.replicas.append(
                    start_replica(
                        {**self.env, **own},
                        name=f"replica-{chr(ord('a') + i)}",
                        log_dir=self.log_dir,
                        args=self.args,
                    )
                )
            for r in self.replicas:
                r.wait_ready()
        except BaseException:
            self.stop()
            raise
        return list(self.replicas)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        for r in self.replicas:
            r.stop()

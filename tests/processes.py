"""Processes for the shared-state tests (issue 13).

``race`` starts one Python interpreter per argument list, each running ``script`` with
``sys.argv[1]`` = the common start time (Unix seconds, far enough ahead for every interpreter to
be up) and the rest = its own arguments; it returns what each printed on stdout, after checking
each exited cleanly. ``OwnRedis``: a redis-server a test stops mid-way (once)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import ragkeel
from ragkeel.testing import services

SRC = str(Path(ragkeel.__file__).resolve().parents[1])
HEAD_START_S = 1.5
TIMEOUT_S = 90.0


def race(script: str, argvs: list[list[str]]) -> list[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    start = str(time.time() + HEAD_START_S)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, start, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for argv in argvs
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=TIMEOUT_S)
        assert proc.returncode == 0, err
        outs.append(out)
    return outs


class OwnRedis:
    """A redis-server of the test's own (``services.start_redis``) that a test may stop mid-way:
    stopped at most once, since a second SIGTERM to its PID could reach another process once
    the PID is reused (pid_max is 32768 here, and the machine starts many processes)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server = services.start_redis(root)
        self.running = True

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def pid(self) -> int:
        return self.server.pid

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.server.stop()

    def restart(self) -> None:
        """Stopped, then a fresh (empty) server on the same port."""
        self.stop()
        self.server = services.start_redis(self.root, port=self.server.port)
        self.running = True

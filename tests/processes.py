"""Real separate processes racing on shared state (issue 13): ``race`` starts one Python
interpreter per argument list, each running ``script`` with ``sys.argv[1]`` = the common start
time (Unix seconds, far enough ahead for every interpreter to be up) and the rest = its own
arguments; it returns what each printed on stdout, after checking each exited cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import ragkeel

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

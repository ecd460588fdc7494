"""``ragkeel serve --workers N`` (``server.workers``): N worker processes behind one port
(issue 12, "multiprocess mode"; issue 13).

uvicorn's own supervisor (``uvicorn.supervisors.Multiprocess``) binds the socket once, spawns
the workers, restarts one that dies, and on SIGTERM/SIGINT sends each worker SIGTERM and waits
for it. Each worker builds its own ``Container`` and app from the same settings
(``WorkerApp``, the picklable app factory uvicorn calls in the worker), so nothing is shared in
memory; what the workers must agree on lives on disk or in a server:

- **metrics**: the parent makes a fresh, empty ``PROMETHEUS_MULTIPROC_DIR`` before the workers
  start (``metrics_dir``; a user's own value is kept), each worker writes its series there and
  a scrape answered by any worker merges them all (``observability/metrics.py``); the
  directory is removed when the parent exits.
- **drain**: per worker, as in one process (``cli/serve.py``): on its SIGTERM a worker refuses
  new answers at once, gives running ones ``server.drain_s``, then exits (``drain_on_signal``
  wraps uvicorn's signal handler, installed before the factory runs).
- **the alert monitor**: every worker evaluates the rules (its gauge and dashboard banner stay
  true), only the holder of ``$RAGKEEL_HOME/monitor.lock`` sends the alerts
  (``observability/monitor/lease.py``): one webhook per transition, not N.
- **the local model**: loaded by every worker, each with its own one-answer-at-a-time queue
  (the GGUF file's ~1.07 GB of page cache is shared through ``mmap``, but each worker adds
  ~0.9 GB of its own: docs/benchmarks.md, "Issue 13: workers"). With more than one worker or replica, run it once with
  ``ragkeel model-server`` and set ``generation.local.base_url``: every worker then reaches it
  through the gateway as the deployment ``local``.
- **state in process memory** (rate limits, breakers, budget accounts) is per worker unless
  ``redis.url`` shares it (issue 13, "Shared state in Redis").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from ragkeel.api import create_app
from ragkeel.api.state import ApiState
from ragkeel.container import Container
from ragkeel.observability.logs import configure_logging
from ragkeel.observability.metrics import MULTIPROC_ENV

Handler = Callable[[int, FrameType | None], Any]


@dataclass(frozen=True, slots=True)
class WorkerApp:
    """The app factory each worker process calls (pickled to it by uvicorn): one container,
    one app, the drain hooked onto the worker's SIGTERM/SIGINT."""

    host: str

    def __call__(self) -> FastAPI:
        container = Container.load()  # the app's lifespan closes it
        configure_logging(container.log_format, level=container.log_level)
        app = create_app(container, preload_model=True, host=self.host, monitor=True)
        drain_on_signal(app.state.ragkeel, container.drain_s)
        return app


def drain_on_signal(state: ApiState, drain_s: float) -> None:
    """Start the API's drain on this process's first SIGTERM/SIGINT, then hand the signal to
    the handler installed before (uvicorn's: stop listening, wait, exit). Main thread only
    (where uvicorn runs the factory); elsewhere nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        return
    started = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)
        signal.signal(sig, _draining(state, drain_s, started, previous))


def _draining(state: ApiState, drain_s: float, started: threading.Event, previous: Any) -> Handler:
    def handle(sig: int, frame: FrameType | None) -> None:
        if not started.is_set():
            started.set()
            state.drain(drain_s)
        if callable(previous):
            previous(sig, frame)

    return handle


@contextlib.contextmanager
def metrics_dir() -> Iterator[str]:
    """``PROMETHEUS_MULTIPROC_DIR`` for the workers: the user's own when set, else a fresh
    empty directory, removed on exit. Set in this process's environment, which the spawned
    workers inherit before they import the metrics client."""
    own = os.environ.get(MULTIPROC_ENV)
    if own:
        yield own
        return
    path = tempfile.mkdtemp(prefix="ragkeel-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


def run_workers(config: uvicorn.Config) -> None:
    """Serve ``config`` (whose app is a ``WorkerApp``, ``factory=True``) from
    ``config.workers`` processes until SIGTERM/SIGINT; the metrics directory lives as long."""
    with metrics_dir():
        sock = config.bind_socket()
        try:
            Multiprocess(config, sockets=[sock]).run()
        finally:
            sock.close()

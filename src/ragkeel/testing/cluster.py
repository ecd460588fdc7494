"""``make cluster`` / ``make cluster-down``: the scale-out topology on one machine, every piece
on loopback and stopped by PID (issue 13; README "Scaling out")::

    python -m ragkeel.testing.cluster up DIR     # starts everything, prints where each listens
    python -m ragkeel.testing.cluster down DIR   # stops what DIR/cluster.json names, by PID

``up`` starts, in order: PostgreSQL + pgvector and Redis (``services.py``); the shared model
server (``ragkeel model-server``, when the local model is installed); two replicas
(``ragkeel serve``, ``replicas.py``) sharing one home, the database, Redis and the model server;
the round-robin proxy in front of them (``proxy.py``); two ingestion workers (``ragkeel
worker``, when the job queue is installed). Each process runs in its own session with its log
in ``DIR/logs``; their PIDs go to ``DIR/cluster.json`` as they start, so ``down`` (or a failed
``up``) stops whatever did start. The settings each piece gets are the ones a real deployment
sets (``replica_env``); ``RAGKEEL_*`` variables already set are passed on unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ragkeel.testing.replicas import Replica, start_replica
from ragkeel.testing.services import ServiceError, free_port, runs, stop_pid
from ragkeel.testing.services import _down as services_down
from ragkeel.testing.services import _up as services_up

REPLICAS = 2
WORKERS = 2
STATE = "cluster.json"


def replica_env(
    services: dict[str, Any],
    home: Path,
    model_url: str | None,
    *,
    postgres: bool,
    redis: bool,
    queue: bool,
) -> dict[str, str]:
    """The settings every replica (and worker) gets: one home, the shared servers (each only
    when this version of ragkeel has its setting)."""
    env = {"RAGKEEL_HOME": str(home)}
    if redis:
        env["RAGKEEL_REDIS__URL"] = str(services["redis_url"])
    if postgres:
        env["RAGKEEL_STORAGE__BACKEND"] = "postgres"
        env["RAGKEEL_STORAGE__POSTGRES__URL"] = str(services["postgres_url"])
    if postgres and queue:  # the queue lives in the same database
        env["RAGKEEL_INGESTION__QUEUE"] = "procrastinate"
    if model_url is not None:
        env["RAGKEEL_GENERATION__LOCAL__BASE_URL"] = model_url
    return env


def _spawn(name: str, argv: list[str], env: dict[str, str], logs: Path) -> int:
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.log").open("wb") as out:
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc.pid


def _model_server(root: Path, state: dict[str, Any]) -> str | None:
    from ragkeel.cli.model_server import missing_server_packages
    from ragkeel.container import Container
    from ragkeel.errors import ModelError
    from ragkeel.models.gguf import verify_file

    with Container.load() as c:
        gguf = c.local_gguf()
    try:
        verify_file(gguf)
    except ModelError as exc:
        print(f"model server: skipped ({exc}; `ragkeel models install`)", file=sys.stderr)
        return None
    if missing_server_packages():
        print("model server: skipped (pip install 'ragkeel[model-server]')", file=sys.stderr)
        return None
    port = free_port()
    argv = [sys.executable, "-m", "ragkeel", "model-server", "--port", str(port)]
    state["pids"]["model-server"] = _spawn("model-server", argv, {}, root / "logs")
    return f"http://127.0.0.1:{port}/v1"


def up(root: Path) -> dict[str, Any]:
    root.mkdir(parents=True, exist_ok=True)
    if (root / STATE).exists():
        raise ServiceError(f"{root / STATE} exists: `make cluster-down` first")
    services = services_up(root / "services")
    state: dict[str, Any] = {"services": services, "pids": {}, "listen": {}}

    def save() -> None:  # after every start: `down` stops whatever did start
        (root / STATE).write_text(json.dumps(state, indent=2))

    save()
    try:
        postgres = queue = True  # every piece of the topology (README "Scaling out")
        model_url = _model_server(root, state)
        save()
        env = replica_env(
            services,
            root / "home",
            model_url,
            postgres=postgres,
            redis=True,
            queue=queue,
        )
        if postgres:  # the schema, before any replica
            subprocess.run(
                [sys.executable, "-m", "ragkeel", "db", "upgrade"],
                env={**os.environ, **env},
                check=True,
                capture_output=True,
            )
        replicas: list[Replica] = []
        for name in ("replica-a", "replica-b")[:REPLICAS]:
            r = start_replica(env, name=name, log_dir=root / "logs")
            replicas.append(r)
            state["pids"][name] = r.pid
            state["listen"][name] = r.url
            save()
        proxy_port = free_port()
        argv = [sys.executable, "-m", "ragkeel.testing.proxy", "--listen", str(proxy_port)]
        argv += [f"127.0.0.1:{r.port}" for r in replicas]
        state["pids"]["proxy"] = _spawn("proxy", argv, {}, root / "logs")
        state["listen"]["proxy"] = f"http://127.0.0.1:{proxy_port}"
        save()
        if postgres and queue:
            for i in range(1, WORKERS + 1):
                argv = [sys.executable, "-m", "ragkeel", "worker"]
                state["pids"][f"worker-{i}"] = _spawn(f"worker-{i}", argv, env, root / "logs")
                save()
        else:  # a version without the job queue or the PostgreSQL store: no workers to start
            print(
                "workers: skipped (needs storage.backend postgres and ingestion.queue: "
                "not in this version)",
                file=sys.stderr,
            )
        for r in replicas:
            r.wait_ready()
    except BaseException:
        down(root)
        raise
    if model_url is not None:
        state["listen"]["model-server"] = model_url
    state["listen"] |= {"postgres": services["postgres_url"], "redis": services["redis_url"]}
    save()
    return state


def down(root: Path) -> None:
    path = root / STATE
    if not path.exists():
        return
    state = json.loads(path.read_text())
    for name, pid in reversed(list(state["pids"].items())):
        # the model server execs llama-cpp-python's server; every other piece runs ragkeel
        program = "llama_cpp" if name == "model-server" else "ragkeel"
        if not runs(int(pid), program):  # gone already, its PID maybe another process's now
            print(f"{name} ({pid}) had already stopped", file=sys.stderr)
            continue
        stop_pid(int(pid), timeout_s=30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(pid), signal.SIGKILL)  # its own workers, if any were left
        print(f"stopped {name} ({pid})", file=sys.stderr)
    if (root / "services" / "services.json").exists():
        services_down(root / "services")
        print("stopped postgres, redis", file=sys.stderr)
    path.unlink()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print("usage: python -m ragkeel.testing.cluster up|down DIR", file=sys.stderr)
        return 2
    root = Path(argv[1]).resolve()
    if argv[0] == "down":
        down(root)
        return 0
    state = up(root)
    for name, where in state["listen"].items():
        print(f"{name:14} {where}")
    print(f"logs: {root / 'logs'}; stop: make cluster-down")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Issue 15: ``ragkeel serve --log-config PATH`` hands a logging configuration to uvicorn, applied
in every worker of ``--workers N``: here a YAML dictConfig sends uvicorn's access lines to a
file too, through ragkeel's own filters (secrets masked) and JSON formatter. (The JSON form,
from the installed wheel: ``tests/packaging/test_wheel.py``.) A file logging cannot apply stops
``serve`` with ``CONFIG_INVALID`` before it listens."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from ragkeel.container import Container
from ragkeel.testing.replicas import Replicas

from .conftest import free_port, serve_env

REQUESTS = 8
LOGS = "ragkeel.observability.logs"


def _access_file_config(path: Path) -> dict[str, object]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": f"{LOGS}.ContextFilter"},
            "redact": {"()": f"{LOGS}.RedactFilter"},
        },
        "formatters": {"json": {"()": f"{LOGS}.JsonLineFormatter"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "filename": str(path),
                "filters": ["context", "redact"],
                "formatter": "json",
            }
        },
        "loggers": {"uvicorn.access": {"handlers": ["file"]}},
    }


def test_a_log_config_reaches_every_worker(container: Container, tmp_path: Path) -> None:
    access = tmp_path / "access.jsonl"
    config = tmp_path / "logging.yaml"
    config.write_text(yaml.safe_dump(_access_file_config(access)))
    env = serve_env(container.home, "http://127.0.0.1:9/unused")
    args = ("--workers", "2", "--log-config", str(config))
    with Replicas(1, env, log_dir=tmp_path / "logs", args=args) as (served,):
        for i in range(REQUESTS):  # one connection each: the kernel spreads them
            r = httpx.get(f"{served.url}/healthz", params={"n": i, "api_key": "s3cret"})
            assert r.status_code == 200
    stderr = served.log_text()  # stopped (SIGTERM, by PID) on leaving the block

    assert served.proc is not None and served.proc.returncode == 0, stderr
    lines = [json.loads(line) for line in access.read_text().splitlines()]
    asked = [line for line in lines if line["path"].startswith("/healthz?n=")]
    # every request in the file, whichever worker served it: the config ran in each worker
    assert len(asked) == REQUESTS, lines
    assert {line["pid"] for line in asked} <= _worker_pids(stderr)
    assert all(line["status"] == 200 and line["trace_id"] for line in asked), asked
    assert "s3cret" not in access.read_text()  # ragkeel's RedactFilter, named in the file
    assert "Traceback" not in stderr, stderr


def _worker_pids(stderr: str) -> set[int]:
    """The pids of the processes that served (uvicorn's "Started server process [PID]")."""
    pids = set()
    for text in stderr.splitlines():
        line = json.loads(text) if text.startswith("{") else {}
        if str(line.get("message")).startswith("Started server process"):
            pids.add(int(line["pid"]))
    return pids


def test_a_log_config_logging_cannot_apply_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "logging.json"
    bad.write_text(json.dumps({"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}))
    done = subprocess.run(
        [sys.executable, "-m", "ragkeel", "serve", "--port", str(free_port()), "--log-config", bad],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "error [CONFIG_INVALID]: --log-config" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr

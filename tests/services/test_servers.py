"""The test servers themselves (issue 13): PostgreSQL with pgvector and Redis answer on
loopback, and each test's database is its own."""

from __future__ import annotations

from pathlib import Path

import psycopg
import redis


def test_postgres_has_pgvector_and_a_private_database(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE t (id int primary key, v vector(3))")
        conn.execute("INSERT INTO t VALUES (1, '[1,0,0]'), (2, '[0,1,0]')")
        row = conn.execute("SELECT id FROM t ORDER BY v <=> '[0.9,0.1,0]' LIMIT 1").fetchone()
        assert row == (1,)
        version = conn.execute("SHOW server_version").fetchone()
        assert version is not None and str(version[0]).startswith("18")


def test_each_test_gets_an_empty_database(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)


def test_redis_answers_and_starts_empty(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()


def test_a_pid_file_still_empty_is_waited_for(tmp_path: Path) -> None:
    """Regression: redis-server creates its PID file and writes it a moment later; reading it
    in between failed the start with an IndexError under load."""
    import threading

    from ragkeel.testing.services import _read_pid

    pidfile = tmp_path / "x.pid"
    pidfile.write_text("")
    threading.Timer(0.2, lambda: pidfile.write_text("4242\n")).start()
    assert _read_pid(pidfile, 5) == 4242
    assert _read_pid(tmp_path / "never.pid", 0.1) is None


def test_stop_pid_signals_only_the_program_it_started() -> None:
    """A PID read back from a file may belong to another process by now (PIDs wrap fast on a
    busy machine): with ``program`` given, a process running something else is left alone."""
    import subprocess
    import time

    from ragkeel.testing.services import runs, stop_pid

    other = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 10  # until the child has exec'd (a fork runs python)
        while not runs(other.pid, "sleep") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runs(other.pid, "sleep") and not runs(other.pid, "redis-server")
        stop_pid(other.pid, timeout_s=1, program="redis-server")
        assert other.poll() is None  # untouched
        stop_pid(other.pid, timeout_s=5, program="sleep")
        assert other.wait(5) is not None
        assert not runs(other.pid, "sleep")
    finally:
        other.kill()
        other.wait()


def test_a_terminated_run_stops_the_servers_it_started(tmp_path: Path) -> None:
    """Regression: a pytest run ended by SIGTERM (a CI timeout, an impatient engineer) left its
    session's PostgreSQL and Redis running for good; SIGTERM now tears the session down."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from ragkeel.testing.services import runs

    repo = Path(__file__).resolve().parents[2]
    test = tmp_path / "test_hold.py"
    test.write_text(
        "import time\n"
        "def test_hold(redis_server):\n"
        "    print('REDIS_PID', redis_server.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{repo / 'src'}{os.pathsep}{repo}"}
    run = subprocess.Popen(  # the suite's conftest as a plugin: its fixtures and its hook
        [
            sys.executable,
            "-m",
            "pytest",
            "-s",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.conftest",
            "--rootdir",
            str(tmp_path),
            str(test),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        pid = None
        assert run.stdout is not None
        for line in run.stdout:  # bounded: the held test sleeps 60 s, pytest's timeout is 300
            if line.startswith("REDIS_PID"):
                pid = int(line.split()[1])
                break
        assert pid is not None and runs(pid, "redis-server"), run.stdout.read()
        run.send_signal(signal.SIGTERM)
        run.wait(30)
        deadline = time.monotonic() + 10
        while runs(pid, "redis-server") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not runs(pid, "redis-server"), "the run's Redis outlived it"
    finally:
        run.kill()
        run.wait()
        if run.stdout is not None:
            run.stdout.close()

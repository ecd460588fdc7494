"""Suite-wide guards: no test can reach the network (loopback is allowed), every test has a
private RAGKEEL_HOME and an empty private models directory (so no test loads the user's
installed chat model unless it asks for ``default_models_dir()``), no ragkeel.yaml of the
developer's leaks in, and no test leaves a logging handler behind."""

from __future__ import annotations

import io
import ipaddress
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_real_connect = socket.socket.connect


def _is_loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
        if host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return True  # AF_UNIX paths


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise RuntimeError(f"tests may not reach the network: connect to {address!r} blocked")
    return _real_connect(self, address)


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM ends the run like Ctrl-C: the session's fixtures are torn down, so the PostgreSQL
    and Redis servers it started are stopped instead of outliving a terminated run."""
    import signal
    import threading

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "ragkeel-home"
    monkeypatch.setenv("RAGKEEL_HOME", str(home))
    monkeypatch.setenv("RAGKEEL_MODELS__DIR", str(tmp_path / "ragkeel-models"))
    monkeypatch.delenv("RAGKEEL_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    yield home


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A test that configures logging (``configure_logging``, ``ragkeel serve`` in process)
    leaves no handler on the root logger, nor its level, to the tests after it."""
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if getattr(h, "_ragkeel", False)]:
        root.removeHandler(handler)  # configure_logging's (pytest's own come and go by phase)
    root.setLevel(level)


@pytest.fixture
def log_buffer() -> io.StringIO:
    """A buffer to pass as ``configure_logging(..., stream=log_buffer)``
    (``observability/logs.py``); the handler goes when the test ends (``_root_logging_restored``)."""
    return io.StringIO()


# -- real servers for the scale-out backends (issue 13): PostgreSQL + pgvector, Redis ----------
# Started once per session from packages (``ragkeel.testing.services``), only when a test asks,
# and stopped by PID at the end. RAGKEEL_TEST_POSTGRES_URL / RAGKEEL_TEST_REDIS_URL point the
# suite at servers that already run instead (an admin URL: each test gets its own database).


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import os

    from ragkeel.testing import services

    if url := os.environ.get("RAGKEEL_TEST_POSTGRES_URL"):
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        yield services.Postgres(root=Path("/nonexistent"), port=parts.port or 5432, pid=-1)
        return
    server = services.start_postgres()
    try:
        yield server
    finally:
        server.stop()
        import shutil

        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: Any) -> Iterator[str]:
    """A fresh database (with the vector extension) per test, dropped afterwards."""
    import uuid

    from ragkeel.testing import services

    name = f"t_{uuid.uuid4().hex[:12]}"
    url = services.create_database(postgres_server, name)
    yield url
    services.drop_database(postgres_server, name)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    import os

    from ragkeel.testing import services

    if url := os.environ.get("RAGKEEL_TEST_REDIS_URL"):
        from urllib.parse import urlsplit

        yield services.Redis(root=Path("/nonexistent"), port=urlsplit(url).port or 6379, pid=-1)
        return
    server = services.start_redis()
    try:
        yield server
    finally:
        server.stop()
        import shutil

        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: Any) -> Iterator[str]:
    """Redis database 0, emptied before the test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    yield redis_server.url

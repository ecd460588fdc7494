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

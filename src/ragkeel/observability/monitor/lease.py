"""``FileLease``: one speaker among the processes that share a ``RAGKEEL_HOME`` (issue 12, 13).

``ragkeel serve --workers N`` runs N processes, and several ``ragkeel serve`` replicas may share
one home; each runs the alert monitor's loop (so every process's ``ragkeel_alert_firing`` gauge
and dashboard banner tell the truth), but only the lease holder *tells the operator*: the
WARNING line and the webhook of an alert's transition are sent once, not once per process.

The lease is an exclusive ``flock`` on a file (``$RAGKEEL_HOME/monitor.lock``), tried without
blocking. A process that fails to get it tries again on its next ``held()`` call (the monitor
asks at every evaluation that changed an alert), so when the holder exits or dies the kernel
frees the lock and another process takes over: its alert book already knows what is firing,
so it does not announce those alerts again. The holder's pid is written into the file
(``holder()``, for the operator and the tests). POSIX only (``fcntl``), like the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path


class FileLease:
    """An exclusive, non-blocking ``flock`` on ``path``, held from the first successful
    ``held()`` until ``close()`` or the end of the process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def held(self) -> bool:
        """Whether this process holds the lease, taking it now if it is free."""
        with self._lock:
            if self._fd is not None:
                return True
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # BlockingIOError: another process holds it
                os.close(fd)
                return False
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._fd = fd
            return True

    def holder(self) -> int | None:
        """The pid the last holder wrote (it may have exited since), or None."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def close(self) -> None:
        """Give the lease up (another process's next ``held()`` takes it)."""
        with self._lock:
            if self._fd is None:
                return
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

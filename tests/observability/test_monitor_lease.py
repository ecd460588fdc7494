"""``FileLease`` (``observability/monitor/lease.py``): one holder among the processes on a home;
the lease passes on when the holder lets go or dies; a monitor that does not hold it evaluates
but tells no one. The cross-process case under ``serve --workers 2`` is in
``tests/api/test_serve_workers.py``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ragkeel.observability.monitor.lease import FileLease


def test_one_holder_at_a_time_and_the_lease_passes_on_close(tmp_path: Path) -> None:
    first, second = (
        FileLease(tmp_path / "home" / "monitor.lock"),
        FileLease(tmp_path / "home" / "monitor.lock"),
    )
    assert first.held() and first.held()  # taken, then kept
    assert first.holder() == os.getpid()
    assert not second.held()
    first.close()
    assert second.held()
    assert not first.held()
    second.close()


def test_a_dead_holders_lease_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "monitor.lock"
    code = (
        "import sys; from pathlib import Path; from ragkeel.observability.monitor.lease import "
        "FileLease; lease = FileLease(Path(sys.argv[1])); assert lease.held(); "
        "print('held', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        mine = FileLease(path)
        assert not mine.held()
        assert mine.holder() == holder.pid
        holder.kill()  # the kernel frees a dead process's flock
        holder.wait(10)
        assert mine.held()
        mine.close()
    finally:
        holder.kill()
        holder.communicate()

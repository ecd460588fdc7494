"""Evaluation reports on the health page: the ``report.html`` files ``ragkeel eval run`` wrote
under the reports directory (``ui.reports_dir``, default ``$RAGKEEL_HOME/results``), found at
most ``MAX_DEPTH`` folders down, newest first, and served as they are.

A report is named in URLs by its path relative to the directory, and only a path that the
listing itself returns is served: no ``..``, no symlink out of the directory, nothing but
``report.html`` files. Reports are self-contained (inline styles, plots as ``data:`` PNGs) and
are served with their own Content-Security-Policy that allows exactly that and no script, in a
sandbox.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPORT_NAME = "report.html"
MAX_DEPTH = 3
MAX_REPORTS = 100
REPORT_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'; sandbox"
)


@dataclass(frozen=True, slots=True)
class Report:
    name: str  # the path relative to the reports directory, with "/"
    modified: str  # ISO time, UTC
    size_kb: float


def list_reports(root: Path) -> list[Report]:
    """The reports under ``root``, newest first (none if it does not exist)."""
    if not root.is_dir():
        return []
    base = root.resolve()
    found: list[tuple[float, Report]] = []
    for folder, dirs, files in os.walk(base):
        here = Path(folder)
        depth = len(here.relative_to(base).parts)
        if depth >= MAX_DEPTH:
            dirs[:] = []
        dirs[:] = [d for d in dirs if not (here / d).is_symlink()]
        if REPORT_NAME not in files:
            continue
        path = here / REPORT_NAME
        if path.is_symlink() or not path.is_file():
            continue
        stat = path.stat()
        when = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(timespec="seconds")
        name = path.relative_to(base).as_posix()
        found.append(
            (stat.st_mtime, Report(name, when.replace("+00:00", "Z"), stat.st_size / 1024))
        )
    found.sort(key=lambda pair: pair[0], reverse=True)
    return [r for _, r in found[:MAX_REPORTS]]


def report_path(root: Path, name: str) -> Path | None:
    """The file of the listed report ``name``, or None when the listing has no such report."""
    if name not in {r.name for r in list_reports(root)}:
        return None
    return root.resolve() / name

"""Expanding ``ingest`` arguments (files, directories, globs) into candidate files.

Symlinks. The *roots* are the directories given as arguments and, for a glob, the directory
before its first wildcard (``docs/**/*.md`` -> ``docs``; ``*.md`` -> the working directory),
each resolved. An argument named explicitly (not through a wildcard) is the user's choice and is
used as given, symlink or not: ``ingest ~/docs-link`` walks the directory the link points to, and
that directory is then the root. A symlink met *inside* a root (walking a directory, or matched
by a glob) is followed only when it leads into one of the roots; a link that leaves them is not
followed and is reported as skipped with ``SYMLINK_OUTSIDE_ROOT`` (``OutsideRootError``), unless
``follow_symlinks`` is set (``ragkeel ingest --follow-symlinks``): then every link is followed,
directory links too, each real directory walked once (no cycles). Without it, a directory link
that stays inside the roots is not walked again (its files are found at their real place).
Hidden files and directories (a leading dot) are never walked.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from ragkeel.errors import IngestError, OutsideRootError, ReadError, UnsupportedTypeError


@dataclass(frozen=True, slots=True)
class SourceScan:
    files: list[Path]  # supported files, resolved, sorted, de-duplicated
    errors: list[tuple[str, IngestError]]  # explicit arguments or directories that failed
    skipped: list[tuple[Path, IngestError]]  # found while walking but not ingested, and why:
    # UnsupportedTypeError (a file type we do not read), OutsideRootError (a symlink leaving
    # the roots)


def expand_sources(
    arguments: list[str], supported: frozenset[str], *, follow_symlinks: bool = False
) -> SourceScan:
    scan = _Scan(supported, follow_symlinks, _roots(arguments))
    for arg in arguments:
        if glob.has_magic(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                scan.errors.append((arg, ReadError(f"{arg}: no file matches this pattern")))
            for match in matches:
                path = Path(match)
                if not scan.allowed(path):  # the match, or a directory on its way, is a link
                    scan.skip_link(path)
                else:
                    scan.add_argument(match)
        else:
            scan.add_argument(arg)
    return SourceScan(sorted(scan.files), scan.errors, scan.skipped)


def _roots(arguments: list[str]) -> list[Path]:
    roots = []
    for arg in arguments:
        if glob.has_magic(arg):
            roots.append(_glob_base(arg).resolve())
        elif Path(arg).is_dir():
            roots.append(Path(arg).resolve())
    return roots


def _glob_base(pattern: str) -> Path:
    """The directories of ``pattern`` before its first wildcard."""
    fixed: list[str] = []
    for part in Path(pattern).parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


class _Scan:
    def __init__(self, supported: frozenset[str], follow: bool, roots: list[Path]) -> None:
        self.supported = supported
        self.follow = follow
        self.roots = roots
        self.files: dict[Path, None] = {}
        self.errors: list[tuple[str, IngestError]] = []
        self.skipped: list[tuple[Path, IngestError]] = []

    def add_argument(self, match: str) -> None:
        path = Path(match)
        if path.is_dir():
            self.walk(path)
        elif not path.exists():
            self.errors.append((match, ReadError(f"{match}: no such file or directory")))
        elif path.suffix.lower() not in self.supported:
            self.errors.append((match, _unsupported(path, self.supported)))
        else:
            self.files[path.resolve()] = None

    def allowed(self, link: Path) -> bool:
        """Whether a path found under a root (a symlink, or reached through one) may be
        followed: always with ``follow_symlinks``, else only into one of the roots."""
        if self.follow:
            return True
        target = link.resolve()
        return any(target.is_relative_to(root) for root in self.roots)

    def skip_link(self, link: Path) -> None:
        target = link.resolve()
        kind = "directory" if target.is_dir() else "file"
        self.skipped.append(
            (
                link,
                OutsideRootError(
                    f"{link}: a symlink (or a path through one) to the {kind} {target}, "
                    "outside the directories being ingested; not followed",
                    hint="ingest the target itself, or pass --follow-symlinks to follow links",
                ),
            )
        )

    def walk(self, root: Path) -> None:
        def on_error(exc: OSError) -> None:
            name = exc.filename or str(root)
            self.errors.append(
                (str(name), ReadError(f"{name}: cannot list directory ({exc.strerror})"))
            )

        visited = {root.resolve()}
        for dirpath, dirnames, filenames in os.walk(root, onerror=on_error, followlinks=True):
            kept = []
            for name in sorted(dirnames):
                path = Path(dirpath) / name
                if name.startswith("."):
                    continue
                if path.is_symlink():
                    if not self.follow:
                        if not self.allowed(path):
                            self.skip_link(path)
                        continue  # inside the roots: its files are found at their real place
                    real = path.resolve()
                    if real in visited:
                        continue  # a cycle, or a directory walked already
                    visited.add(real)
                kept.append(name)
            dirnames[:] = kept
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                path = Path(dirpath) / name
                if path.is_symlink() and not self.allowed(path):
                    self.skip_link(path)
                elif path.suffix.lower() in self.supported:
                    self.files[path.resolve()] = None
                else:
                    self.skipped.append(
                        (
                            path,
                            UnsupportedTypeError(f"{path.name}: file type not supported, skipped"),
                        )
                    )


def _unsupported(path: Path, supported: frozenset[str]) -> UnsupportedTypeError:
    return UnsupportedTypeError(
        f"{path.name}: file type {path.suffix or '(none)'} is not supported",
        hint="supported: " + " ".join(sorted(supported)),
    )

"""Expanding ``ingest`` arguments (files, directories, globs) into candidate files."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from ragkeel.errors import IngestError, ReadError, UnsupportedTypeError


@dataclass(frozen=True, slots=True)
class SourceScan:
    files: list[Path]  # supported files, sorted, de-duplicated
    errors: list[tuple[str, IngestError]]  # explicit arguments or directories that failed
    skipped: list[Path]  # unsupported files found while walking directories


def expand_sources(arguments: list[str], supported: frozenset[str]) -> SourceScan:
    files: dict[Path, None] = {}
    errors: list[tuple[str, IngestError]] = []
    skipped: list[Path] = []
    for arg in arguments:
        matches = sorted(glob.glob(arg, recursive=True)) if glob.has_magic(arg) else [arg]
        if not matches:
            errors.append((arg, ReadError(f"{arg}: no file matches this pattern")))
        for match in matches:
            path = Path(match)
            if path.is_dir():
                _walk(path, supported, files, errors, skipped)
            elif not path.exists():
                errors.append((match, ReadError(f"{match}: no such file or directory")))
            elif path.suffix.lower() not in supported:
                errors.append((match, _unsupported(path, supported)))
            else:
                files[path.resolve()] = None
    return SourceScan(sorted(files), errors, skipped)


def _walk(
    root: Path,
    supported: frozenset[str],
    files: dict[Path, None],
    errors: list[tuple[str, IngestError]],
    skipped: list[Path],
) -> None:
    def on_error(exc: OSError) -> None:
        name = exc.filename or str(root)
        errors.append((str(name), ReadError(f"{name}: cannot list directory ({exc.strerror})")))

    for dirpath, dirnames, filenames in os.walk(root, onerror=on_error):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if path.suffix.lower() in supported:
                files[path.resolve()] = None
            else:
                skipped.append(path)


def _unsupported(path: Path, supported: frozenset[str]) -> UnsupportedTypeError:
    return UnsupportedTypeError(
        f"{path.name}: file type {path.suffix or '(none)'} is not supported",
        hint="supported: " + " ".join(sorted(supported)),
    )

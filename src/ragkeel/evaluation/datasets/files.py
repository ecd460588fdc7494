"""What every data set loader does with its source files, in one place: checksums (the report
pins exactly what was evaluated), a seeded stable sample, slugs for ids and tags, atomic
"write only if changed" for materialised corpora, and ``DatasetError`` messages that name the
file and line.

Sampling: ``sample_cases(cases, limit, seed)`` draws ``limit`` ids with ``random.Random(seed)``
from the ids *sorted*, so the same file and seed give the same cases whatever order a dict or
the file had; the chosen cases keep their order in the source.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ragkeel.errors import DatasetError
from ragkeel.evaluation.cases import EvalCase

_NOT_SLUG = re.compile(r"[^0-9a-z]+")


def slugify(text: str) -> str:
    """Lowercase ASCII letters and digits joined by ``-``: ``"Super_Bowl_50"`` →
    ``"super-bowl-50"``. Empty when ``text`` has no letter or digit."""
    return _NOT_SLUG.sub("-", text.lower()).strip("-")


def files_sha256(paths: Sequence[Path]) -> str:
    """The sha256 of one file; for several, the sha256 of their ``name<TAB>sha256`` lines in
    the given order (so renaming a file or changing any byte changes it)."""
    digests = [_file_sha256(p) for p in paths]
    if len(digests) == 1:
        return digests[0]
    lines = "".join(f"{p.name}\t{d}\n" for p, d in zip(paths, digests, strict=True))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def _file_sha256(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror}") from exc


def sample_cases(
    cases: Sequence[EvalCase], limit: int | None, seed: int = 0
) -> tuple[EvalCase, ...]:
    """All ``cases`` when ``limit`` is None or not smaller than their number, else a seeded
    sample of ``limit`` of them (see the module docstring)."""
    if limit is None or limit >= len(cases):
        return tuple(cases)
    if limit < 1:
        raise DatasetError(f"limit must be at least 1, got {limit}")
    chosen = set(random.Random(seed).sample(sorted(c.id for c in cases), limit))
    return tuple(c for c in cases if c.id in chosen)


def write_if_changed(path: Path, content: bytes) -> bool:
    """Write ``content`` to ``path`` unless it already holds exactly that; atomically (a
    temporary file renamed over it), so a reader never sees half a file. True if written."""
    try:
        if path.is_file() and path.read_bytes() == content:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise DatasetError(
            f"cannot write {path}: {exc.strerror}", hint="check the work directory"
        ) from exc
    return True


def require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise DatasetError(f"{what} {path} does not exist", hint="check the path")


def malformed(path: Path, line_no: int | None, problem: str) -> DatasetError:
    where = f"{path}:{line_no}" if line_no is not None else str(path)
    return DatasetError(f"{where}: {problem}", hint="fix the data set file")

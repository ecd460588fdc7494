"""Files parsed in worker processes while the ingesting process embeds and writes (issue 14).

``parsed_in_order(paths, workers=N, max_bytes=..., limits=...)`` yields ``(path, outcome)`` in
the order of ``paths``, where ``outcome`` is the file's ``ParseOutcome`` or the ``IngestError``
that refused it (the same stable codes as parsing in-process: ``parse_source`` runs in the
worker with the file's ``ParseLimits``, its parse deadline counted from the worker's start on
that file). At most ``2 x workers`` files are parsed ahead of the one the caller is working on,
so parsed-but-unwritten documents stay bounded; the caller embeds and writes one file's
documents while the workers parse the next ones.

- ``workers`` < 1, or fewer than two files whose parsing takes long (PDF, DOCX: ``SLOW_SUFFIXES``):
  parsed here, one after the other (starting processes costs more than a few text files take).
- Worker processes are started with "spawn" (no fork of a process running ONNX or SQLite
  threads) and stopped when the generator ends or is closed (a failed or interrupted ingest).
- A worker that dies (a crash in a native PDF library, the OOM killer) breaks the pool: each
  file it held is parsed again alone in a fresh single-worker pool, and refused with
  ``PARSE_ERROR`` ("the parser process stopped") if that one dies too; the other files go on
  in a new pool. Any other unexpected exception inside a worker is a ``PARSE_ERROR`` for its
  file, as in-process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ragkeel.errors import IngestError, ParseError
from ragkeel.ingestion.parsers import ParseLimits, ParseOutcome, parse_source

__all__ = ["auto_parse_workers", "parse_one", "parsed_in_order"]

MAX_AUTO_WORKERS = 4
SLOW_SUFFIXES = frozenset({".pdf", ".docx"})  # the formats whose parsing is worth a process
Parsed = ParseOutcome | IngestError


def auto_parse_workers() -> int:
    """Half the cores (the other half embeds), at least 1 and at most ``MAX_AUTO_WORKERS``."""
    return max(1, min(MAX_AUTO_WORKERS, (os.cpu_count() or 1) // 2))


def parse_one(path: Path, max_bytes: int, limits: ParseLimits) -> ParseOutcome:
    """Parse one file; any failure is an ``IngestError`` (a parser bug a ``PARSE_ERROR``).
    Module-level so worker processes can run it."""
    try:
        return parse_source(path, max_bytes=max_bytes, limits=limits)
    except IngestError:
        raise
    except Exception as exc:  # a parser bug must not stop the batch; it is recorded
        raise ParseError(f"{path.name}: unexpected {type(exc).__name__}: {exc}") from exc


def parsed_in_order(
    paths: Sequence[Path], *, workers: int, max_bytes: int, limits: ParseLimits
) -> Iterator[tuple[Path, Parsed]]:
    if workers < 1 or sum(path.suffix.lower() in SLOW_SUFFIXES for path in paths) < 2:
        for path in paths:
            yield path, _here(path, max_bytes, limits)
        return
    size = min(workers, len(paths))
    pool = _pool(size)
    # (path, its future, the pool it was given to): a dead worker breaks only its own pool
    window: deque[tuple[Path, Future[ParseOutcome], ProcessPoolExecutor]] = deque()
    pending = iter(paths)
    try:
        for path in pending:
            window.append((path, pool.submit(parse_one, path, max_bytes, limits), pool))
            if len(window) >= 2 * size:
                break
        while window:
            path, future, owner = window.popleft()
            try:
                parsed: Parsed = future.result()
            except IngestError as exc:
                parsed = exc
            except BrokenProcessPool:
                if owner is pool:  # replace it once, for the files still to come
                    pool.shutdown(wait=True, cancel_futures=True)
                    pool = _pool(size)
                parsed = _alone(path, max_bytes, limits)
            following = next(pending, None)
            if following is not None:
                submitted = pool.submit(parse_one, following, max_bytes, limits)
                window.append((following, submitted, pool))
            yield path, parsed
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _here(path: Path, max_bytes: int, limits: ParseLimits) -> Parsed:
    try:
        return parse_one(path, max_bytes, limits)
    except IngestError as exc:
        return exc


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _alone(path: Path, max_bytes: int, limits: ParseLimits) -> Parsed:
    """Parse ``path`` again in a pool of its own, to tell the file that kills its worker from
    the files that were in the same pool when it died."""
    with _pool(1) as solo:
        try:
            return solo.submit(parse_one, path, max_bytes, limits).result()
        except IngestError as exc:
            return exc
        except BrokenProcessPool:
            return ParseError(
                f"{path.name}: the parser process stopped while reading the file (it crashed "
                "or ran out of memory)",
                hint="the file may be damaged; re-export it (e.g. print to PDF) and retry",
            )

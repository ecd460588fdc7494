"""On-disk copy of compacted segments, so a new process can search without rebuilding one.

Layout, next to the database ``<dir>/<name>.db``::

    <dir>/segments/<key>/manifest.json      which version is current, with its counts
    <dir>/segments/<key>/<token>/*.npy      one version: the arrays of a ``SegmentBase``

``key`` hashes the database file name and the collection name. A save writes a new version
directory under a temporary name, renames it, then atomically replaces ``manifest.json`` to
point at it, so a reader sees the old version or the new one, never a mix. Loading
memory-maps the large arrays (vectors, postings), so it costs milliseconds whatever the size.

The cache is only an accelerator. Anything unexpected — missing or truncated files, a shape
that disagrees with the manifest, an unwritable directory — is logged and reported as a miss,
and the caller rebuilds from the tables. Content is not checksummed (that would read every
byte); files are fsynced before the manifest names them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ragkeel.storage.postings import Postings
from ragkeel.storage.segment import SegmentBase

logger = logging.getLogger(__name__)

FORMAT = 1
_MMAP_MIN_BYTES = 1 << 20  # smaller arrays are read into memory
_STALE_TMP_S = 3600.0  # an unfinished save older than this is abandoned


@dataclass(frozen=True, slots=True)
class CachedBase:
    base: SegmentBase
    uid: str
    generation: int


class SegmentCache:
    def __init__(self, root: Path, db_name: str) -> None:
        self.root, self._db_name = root, db_name

    def _dir(self, collection: str) -> Path:
        digest = hashlib.sha256(f"{self._db_name}\0{collection}".encode()).hexdigest()
        return self.root / digest[:20]

    # -- save -----------------------------------------------------------------------------------
    def save(self, collection: str, uid: str, generation: int, base: SegmentBase) -> bool:
        """Persist ``base`` as ``collection``'s current version; False (logged) on failure."""
        target = self._dir(collection)
        token = f"g{generation}-{uuid.uuid4().hex[:12]}"
        tmp = target / f".{token}.tmp"
        try:
            tmp.mkdir(parents=True)
            for name, array in _arrays(base).items():
                with open(tmp / f"{name}.npy", "wb") as f:
                    np.save(f, np.ascontiguousarray(array), allow_pickle=False)
                    f.flush()
                    os.fsync(f.fileno())
            tmp.rename(target / token)
            manifest = {
                "format": FORMAT,
                "collection": collection,
                "uid": uid,
                "generation": generation,
                "token": token,
                **_shape_facts(base),
            }
            staging = target / f".manifest-{token}.tmp"
            staging.write_text(json.dumps(manifest, indent=1))
            with open(staging, "rb") as f:
                os.fsync(f.fileno())
            os.replace(staging, target / "manifest.json")
            _fsync_dir(target)
        except OSError as exc:
            logger.warning("could not save the segment cache in %s: %s", target, exc)
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        self._sweep(target, keep=token)
        return True

    def _sweep(self, target: Path, keep: str) -> None:
        now = time.time()
        for entry in target.iterdir():
            if entry.name in (keep, "manifest.json"):
                continue
            try:
                unfinished = entry.name.startswith(".")
                if unfinished and now - entry.stat().st_mtime < _STALE_TMP_S:
                    continue  # possibly another process's save in progress
                if entry.is_dir():
                    shutil.rmtree(entry)  # readers that mapped its files keep them until closed
                else:
                    entry.unlink()
            except OSError as exc:
                logger.warning("could not remove old segment cache %s: %s", entry, exc)

    def drop(self, collection: str) -> None:
        shutil.rmtree(self._dir(collection), ignore_errors=True)

    # -- load -----------------------------------------------------------------------------------
    def load(self, collection: str) -> CachedBase | None:
        """The current cached version, or None when there is none or it does not check out."""
        target = self._dir(collection)
        path = target / "manifest.json"
        if not path.exists():
            return None
        try:
            manifest = json.loads(path.read_text())
            if manifest.get("format") != FORMAT or manifest.get("collection") != collection:
                raise ValueError(f"manifest is for {manifest.get('collection')!r}")
            folder = target / str(manifest["token"])
            arrays = {name: _load(folder / f"{name}.npy") for name in _ARRAY_NAMES}
            base = SegmentBase(
                arrays["rowids"],
                arrays["id_blob"],
                arrays["id_offsets"],
                arrays["lengths"],
                arrays["vectors"],
                Postings(arrays["terms"], arrays["starts"], arrays["docs"], arrays["tfs"]),
            )
            facts = _shape_facts(base)
            wrong = {k: (v, manifest.get(k)) for k, v in facts.items() if manifest.get(k) != v}
            if wrong:
                raise ValueError(f"arrays disagree with the manifest: {wrong}")
            _check_dtypes(base)
            return CachedBase(base, str(manifest["uid"]), int(manifest["generation"]))
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring the segment cache in %s (will rebuild): %s", target, exc)
            return None


_ARRAY_NAMES = (
    "rowids",
    "id_blob",
    "id_offsets",
    "lengths",
    "vectors",
    "terms",
    "starts",
    "docs",
    "tfs",
)
_DTYPES = {
    "rowids": np.int64,
    "id_blob": np.uint8,
    "id_offsets": np.int64,
    "lengths": np.int32,
    "vectors": np.float32,
    "terms": np.int32,
    "starts": np.int64,
    "docs": np.int32,
    "tfs": np.uint16,
}


def _arrays(base: SegmentBase) -> dict[str, npt.NDArray[np.generic]]:
    p = base.postings
    return {
        "rowids": base.rowids,
        "id_blob": base.id_blob,
        "id_offsets": base.id_offsets,
        "lengths": base.lengths,
        "vectors": base.vectors,
        "terms": p.terms,
        "starts": p.starts,
        "docs": p.docs,
        "tfs": p.tfs,
    }


def _shape_facts(base: SegmentBase) -> dict[str, object]:
    """Counts that tie the arrays together; a cached version must reproduce them exactly."""
    p, n = base.postings, base.size
    return {
        "rows": n,
        "max_rowid": int(base.rowids[-1]) if n else 0,
        "dimension": int(base.vectors.shape[1]) if base.vectors.ndim == 2 else -1,
        "vector_rows": int(base.vectors.shape[0]),
        "lengths": len(base.lengths),
        "id_offsets": len(base.id_offsets),
        "id_bytes": len(base.id_blob),
        "id_end": int(base.id_offsets[-1]) if len(base.id_offsets) else -1,
        "terms": len(p.terms),
        "starts": len(p.starts),
        "postings": len(p.docs),
        "tfs": len(p.tfs),
        "postings_end": int(p.starts[-1]) if len(p.starts) else -1,
    }


def _check_dtypes(base: SegmentBase) -> None:
    for name, array in _arrays(base).items():
        if array.dtype != _DTYPES[name]:
            raise ValueError(f"{name} has dtype {array.dtype}, expected {_DTYPES[name]}")


def _load(path: Path) -> Any:  # an ndarray; its dtype is checked by _check_dtypes
    big = path.stat().st_size >= _MMAP_MIN_BYTES
    return np.load(path, mmap_mode="r" if big else None, allow_pickle=False)


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync there; renames are durable
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

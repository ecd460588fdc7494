"""Documents sent over HTTP, through the ingestion pipeline.

An uploaded file is kept, under its original name, at
``$RAGKEEL_HOME/uploads/<tenant>/<collection>/`` (issue 11: tenant B's ``policy.md`` never
replaces tenant A's; each part is a collision-free slug) for as long as a document comes from it: the pipeline uses the file's path as the documents'
``source`` and (for one-document files) as their id, so this keeps both stable. Uploading a
file of the same name again replaces it (or finds it unchanged); ``ragkeel ingest --prune``
keeps it (the path still exists); deleting its last document deletes the file. A JSON text
document becomes a one-record ``.jsonl`` file there (its ``id`` is the document id). Those
paths and ids are internal: clients see the service's ids and the file names
(``public_ids.py``), in the upload report too, whose messages are scrubbed of server paths.

Orphans. A file is written under a temporary ``.upload-*`` name and renamed into place, then
ingested; the files no document comes from are deleted as soon as the run ends (also when it
fails). A crash can still leave a temporary file (mid-write) or a kept file without a document
(between the rename and the document's commit): ``remove_orphans``, which the app runs at
start-up before it takes requests (``api/app.py``), deletes every file of the area that no stored
document of any collection comes from. One server per ``RAGKEEL_HOME`` is assumed (SQLite has
one writer); files modified after the sweep began are left alone.

With the job queue (``ingestion.queue``, issue 13: ``enqueue_files``, ``enqueue_text``) the
files are kept the same way, then one job is deferred and its id answered; a worker ingests
them (``cli/worker.py``) and deletes the ones no document came from once the job has
succeeded. The orphan sweep keeps the files of jobs not done yet (``JobQueue.pending_paths``,
dead jobs included: ``jobs retry`` runs them again). The job's report is shown as the upload
report is (``files_out``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ragkeel.api.public_ids import TEXT_DIR, PublicView
from ragkeel.api.schemas import FileReportOut, IngestOut, TextDocumentIn
from ragkeel.errors import InvalidUploadError
from ragkeel.ingestion.pipeline import IngestionPipeline
from ragkeel.ingestion.report import FileResult
from ragkeel.jobs.model import JobQueue, JobSpec
from ragkeel.storage.base import ManagedStore
from ragkeel.types import DEFAULT_TENANT, AccessScope

log = logging.getLogger("ragkeel.api")
_UNSAFE = re.compile(r"[^\w.\-() ]+", re.UNICODE)
_TEMP_PREFIX = ".upload-"
MAX_NAME = 120


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose upload: the caller's tenant, and the ACL principals its documents get (none:
    public within the tenant)."""

    tenant: str = DEFAULT_TENANT
    principals: tuple[str, ...] = ()
    language: str | None = None  # the collection's keyword language, if the caller named one


DEFAULT_OWNER = Owner()  # the default tenant, public: as with auth off


class UploadArea:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def file_path(self, tenant: str, collection: str, filename: str) -> Path:
        return self._dir(tenant, collection) / safe_filename(filename)

    def text_path(self, tenant: str, collection: str, document_id: str) -> Path:
        return self._dir(tenant, collection) / TEXT_DIR / f"{_slug(document_id)}.jsonl"

    def _dir(self, tenant: str, collection: str) -> Path:
        return self.root / _slug(tenant) / _slug(collection)

    def owns(self, source: str) -> bool:
        return Path(source).is_relative_to(self.root)

    def save(self, path: Path, data: BinaryIO) -> None:
        """Write atomically (a reader never sees half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(data, out, 1024 * 1024)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def discard_unused(
        self, store: ManagedStore, tenant: str, collection: str, paths: Iterable[Path]
    ) -> None:
        """Delete the kept files no document of ``tenant``'s ``collection`` comes from any
        more (whatever the documents' ACLs)."""
        used = store.documents_by_source(collection, scope=_whole(tenant))
        for path in paths:
            if self.owns(str(path)) and not used.get(str(path)):
                path.unlink(missing_ok=True)

    def remove_orphans(
        self, store: ManagedStore, keep: Collection[str] = frozenset()
    ) -> list[Path]:
        """Delete the files (and temporary files) of the area that no document of any
        collection comes from, as a crash mid-upload leaves them, except those in ``keep`` (the
        files of queued jobs); returns what was deleted."""
        if not self.root.is_dir():
            return []
        started = time.time()
        used = set(keep) | {
            source
            for tenant in store.tenants()
            for collection in store.collections(scope=_whole(tenant))
            for source in store.documents_by_source(collection, scope=_whole(tenant))
        }
        removed = []
        for path in sorted(self.root.rglob("*")):
            if path.is_symlink() or not path.is_file() or str(path) in used:
                continue
            try:
                if path.stat().st_mtime >= started:
                    continue  # written since the sweep began: not ours to judge
                path.unlink()
            except OSError as exc:  # gone meanwhile, or not ours to delete: leave it
                log.warning("could not remove orphaned upload %s: %s", path, exc)
                continue
            removed.append(path)
        return removed


def _whole(tenant: str) -> AccessScope:
    """Everything of ``tenant``, whatever the ACLs: the area's own bookkeeping."""
    return AccessScope(tenant, all_principals=True)


def safe_filename(name: str) -> str:
    """The base name of an uploaded file, without directories, leading dots or odd characters."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = _UNSAFE.sub("_", base).strip(" ").lstrip(".")
    if not cleaned or not Path(cleaned).stem:
        raise InvalidUploadError(
            f"unusable file name {name!r}", hint="send a file name such as notes.md"
        )
    if len(cleaned) > MAX_NAME:
        suffix = Path(cleaned).suffix[:16]
        cleaned = cleaned[: MAX_NAME - len(suffix)] + suffix
    return cleaned


def _slug(value: str) -> str:
    """A directory-safe, readable and collision-free name for ``value``."""
    digest = hashlib.blake2b(value.encode("utf-8"), digest_size=4).hexdigest()
    readable = _UNSAFE.sub("_", value).replace(" ", "_").strip("._")[:48]
    return f"{readable}-{digest}" if readable else digest


def ingest_files(
    area: UploadArea,
    pipeline: IngestionPipeline,
    store: ManagedStore,
    collection: str,
    files: Sequence[tuple[str, BinaryIO]],
    owner: Owner = DEFAULT_OWNER,
    *,
    view: PublicView,
) -> IngestOut:
    """Keep each ``(filename, data)`` in ``owner.tenant``'s upload area and ingest them in one
    run (each document's ACL: ``owner.principals``); the report names documents as ``view``
    (the caller's) shows them."""
    targets = keep_files(area, store, collection, files, owner)
    return _ingest(area, pipeline, store, collection, targets, owner, view)


def enqueue_files(
    area: UploadArea,
    queue: JobQueue,
    store: ManagedStore,
    collection: str,
    files: Sequence[tuple[str, BinaryIO]],
    owner: Owner = DEFAULT_OWNER,
) -> str:
    """Keep the files as ``ingest_files`` does and defer one job that ingests them; its id."""
    return _enqueue(
        area, queue, store, collection, keep_files(area, store, collection, files, owner), owner
    )


def enqueue_text(
    area: UploadArea,
    queue: JobQueue,
    store: ManagedStore,
    collection: str,
    doc: TextDocumentIn,
    owner: Owner = DEFAULT_OWNER,
) -> str:
    """Keep the text as ``ingest_text`` does and defer one job that ingests it; its id."""
    path, document_id = _keep_text(area, collection, doc, owner)
    return _enqueue(area, queue, store, collection, {path: document_id}, owner)


def _enqueue(
    area: UploadArea,
    queue: JobQueue,
    store: ManagedStore,
    collection: str,
    targets: dict[Path, str],
    owner: Owner,
) -> str:
    spec = JobSpec(
        tenant=owner.tenant,
        collection=collection,
        paths=tuple(str(p) for p in targets),
        principals=owner.principals,
        names={str(p): name for p, name in targets.items()},
        uploaded=True,
        language=owner.language,
    )
    try:
        return queue.submit(spec)
    except BaseException:
        area.discard_unused(store, owner.tenant, collection, targets)
        raise


def keep_files(
    area: UploadArea,
    store: ManagedStore,
    collection: str,
    files: Sequence[tuple[str, BinaryIO]],
    owner: Owner,
) -> dict[Path, str]:
    """Save each ``(filename, data)`` in ``owner.tenant``'s upload area: path -> name as
    uploaded (two files of one name: ``INVALID_UPLOAD``, before any file is kept)."""
    targets: dict[Path, str] = {}
    for filename, _ in files:  # every name is checked before any file is kept
        path = area.file_path(owner.tenant, collection, filename)
        if path in targets:
            raise InvalidUploadError(
                f"two uploaded files are both named {path.name!r}", hint="upload them separately"
            )
        targets[path] = filename
    try:
        for path, (_, data) in zip(targets, files, strict=True):
            area.save(path, data)
    except BaseException:
        area.discard_unused(store, owner.tenant, collection, targets)
        raise
    return targets


def ingest_text(
    area: UploadArea,
    pipeline: IngestionPipeline,
    store: ManagedStore,
    collection: str,
    doc: TextDocumentIn,
    owner: Owner = DEFAULT_OWNER,
    *,
    view: PublicView,
) -> IngestOut:
    path, document_id = _keep_text(area, collection, doc, owner)
    return _ingest(area, pipeline, store, collection, {path: document_id}, owner, view)


def _keep_text(
    area: UploadArea, collection: str, doc: TextDocumentIn, owner: Owner
) -> tuple[Path, str]:
    """A JSON text document kept as a one-record ``.jsonl`` file: its path and document id."""
    document_id = doc.id or "text-" + hashlib.sha256(doc.text.encode("utf-8")).hexdigest()[:16]
    record = {
        "_id": document_id,
        "title": doc.title or "",
        "text": doc.text,
        "metadata": doc.metadata,
    }
    path = area.text_path(owner.tenant, collection, document_id)
    payload = json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
    area.save(path, io.BytesIO(payload))
    return path, document_id


def _ingest(
    area: UploadArea,
    pipeline: IngestionPipeline,
    store: ManagedStore,
    collection: str,
    targets: dict[Path, str],
    owner: Owner,
    view: PublicView,
) -> IngestOut:
    try:
        report = pipeline.ingest(
            [str(p) for p in targets],
            collection,
            tenant=owner.tenant,
            principals=owner.principals,
            language=owner.language,
        )
    finally:
        area.discard_unused(store, owner.tenant, collection, targets)
    names = {str(p): name for p, name in targets.items()}
    files = files_out(store, collection, owner.tenant, report.files, names, view)
    return IngestOut(
        collection=collection,
        files=files,
        documents_written=report.documents_written,
        documents_unchanged=report.documents_unchanged,
        chunks_written=report.chunks_written,
        elapsed_seconds=round(report.elapsed_seconds, 3),
    )


def files_out(
    store: ManagedStore,
    collection: str,
    tenant: str,
    results: Iterable[FileResult],
    names: Mapping[str, str],
    view: PublicView,
) -> list[FileReportOut]:
    """Per-file results as the client sees them: the names as uploaded (``names``: path ->
    name), the documents' public ids, messages scrubbed of server paths."""
    by_source = store.documents_by_source(collection, scope=_whole(tenant))
    return [
        FileReportOut.of(
            f,
            filename=names.get(f.path, Path(f.path).name),
            document_ids=sorted(view.id(i) for i in by_source.get(f.path, ())),
            source=view.filename(f.path, names.get(f.path, "")),
            scrub=view.scrub,
        )
        for f in results
    ]

"""What clients see of a document's identity (issue 11): an id the service assigned and the
original file name, never a path on the server.

Inside the service a document is named by where it came from (``ingestion/pipeline.py``): its
``document_id`` is the source path (``/srv/docs/policy.md``), ``path#line-3`` for a record of a
multi-document file (CSV, JSON lines), or an id the file itself gives (a JSON ``_id``); uploads
live under ``$RAGKEEL_HOME/uploads/<tenant>/<collection>/``. The store, the pipeline, the CLI
(run on the operator's own machine), traces and evaluation keep those internal ids. The API
projects them at its edge, here, and nowhere else:

- ``document_id`` (hits, citations, ``/v1/documents`` ids, upload reports, ``DELETE``):
  ``doc_`` + 32 hex digits, the BLAKE2b digest of (tenant, internal id) keyed with a secret
  of the service (``$RAGKEEL_HOME/public-ids.key``, 32 random bytes made on first use, mode
  0600). Keyed, so that nobody can confirm a guessed server path by hashing it; stable (the
  same document keeps its id across re-uploads and restarts, as long as the key file and its
  internal id stay: deleting the key changes every id, nothing else); opaque; unique within a
  collection as the internal ids are (a route's ``collection`` parameter says which); and
  different per tenant.
- ``source``: the file's own name, never its directories: ``policy.md``; ``rows.csv#line-3``
  for one record of a multi-document file (``name#`` + the record's id); for a JSON text
  document (``POST /v1/documents`` with JSON) the ``id`` it was sent with.

A route that takes a document id maps it back (``internal_id``) among the documents the
caller's ``AccessScope`` sees in that collection: another tenant's id, one hidden by an ACL and
one that does not exist are the same 404, so ids cannot be probed. The lookup hashes the
ids of that listing (one pass; the deletion route is the only caller).

Messages about an uploaded file (an ingest error, a record's error) name the file as
``source`` does: ``scrub_paths`` replaces the upload area's paths and the server's home
directory in them; ``api/problems.py`` passes every problem's ``detail`` through it as well. Answers cite by number (``[1]``) and the prompt labels sources by title or file name
(``generation/context.py``), so answer text carries no paths of its own; the chat's
"Sources:" footer uses the same names as ``source``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath, PureWindowsPath

from ragkeel.errors import StorageError
from ragkeel.generation.answer import Answer
from ragkeel.storage.base import ManagedStore
from ragkeel.types import DEFAULT_TENANT, AccessScope, Citation, SearchHit, SearchResult

PREFIX = "doc_"
TEXT_DIR = "text"  # where the upload area keeps JSON text documents (``uploads.py``)
KEY_FILE = "public-ids.key"
KEY_BYTES = 32


def public_id(key: bytes, tenant: str, document_id: str) -> str:
    """The id clients see for ``tenant``'s document ``document_id`` (an internal id)."""
    data = f"{tenant}\x00{document_id}".encode("utf-8", "surrogatepass")
    return PREFIX + hashlib.blake2b(data, key=key, digest_size=16).hexdigest()


def load_key(home: Path) -> bytes:
    """The secret public ids are keyed with, ``home/public-ids.key``; made on first use (mode
    0600; two processes making it at once agree on one). ``StorageError`` when it cannot be
    read or made, or is damaged."""
    path = home / KEY_FILE
    try:
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".public-ids-", dir=home)  # mode 0600
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(secrets.token_bytes(KEY_BYTES))
                os.link(tmp, path)  # never replaces a key another process made meanwhile
            except FileExistsError:
                pass
            finally:
                Path(tmp).unlink(missing_ok=True)
        key = path.read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read or make the public id key {path}: {exc}") from exc
    if len(key) != KEY_BYTES:
        raise StorageError(
            f"the public id key {path} is damaged ({len(key)} bytes, not {KEY_BYTES})",
            hint="restore it from a backup; deleting it gives every document a new id",
        )
    return key


def file_name(source: str) -> str:
    """The base name of a source path (POSIX or Windows), never its directories."""
    name = PureWindowsPath(PurePosixPath(source).name).name
    return name or source.rstrip("/\\").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class PublicView:
    """The projection for one caller: its tenant, the id ``key``, and the server's upload
    area and home (the paths that must never reach a client)."""

    tenant: str
    key: bytes = field(repr=False)
    uploads: Path
    home: Path | None = None

    @classmethod
    def of(
        cls, scope: AccessScope | None, key: bytes, uploads: Path, home: Path | None = None
    ) -> PublicView:
        tenant = scope.tenant if scope is not None else DEFAULT_TENANT
        return cls(tenant, key, uploads.resolve(), home.resolve() if home is not None else None)

    def id(self, document_id: str) -> str:
        return public_id(self.key, self.tenant, document_id)

    def is_text_upload(self, source: str) -> bool:
        path = Path(source)
        return path.is_relative_to(self.uploads) and path.parent.name == TEXT_DIR

    def source(self, source: str, document_id: str) -> str:
        """The display name of document ``document_id`` ingested from ``source``."""
        if self.is_text_upload(source):
            return document_id
        name = file_name(source)
        if document_id == source:
            return name
        fragment = document_id.removeprefix(f"{source}#")
        return f"{name}#{fragment}"

    def filename(self, source: str, document_id: str) -> str:
        """The name of the file the document came from (a JSON text document: its id)."""
        return document_id if self.is_text_upload(source) else file_name(source)

    def hit(self, hit: SearchHit) -> SearchHit:
        c = hit.chunk
        chunk = replace(
            c, document_id=self.id(c.document_id), source=self.source(c.source, c.document_id)
        )
        return replace(hit, chunk=chunk)

    def result(self, result: SearchResult) -> SearchResult:
        return replace(result, hits=tuple(self.hit(h) for h in result.hits))

    def citation(self, c: Citation) -> Citation:
        return replace(
            c, document_id=self.id(c.document_id), source=self.source(c.source, c.document_id)
        )

    def answer(self, a: Answer) -> Answer:
        return replace(
            a,
            citations=tuple(self.citation(c) for c in a.citations),
            hits=tuple(self.hit(h) for h in a.hits),
        )

    def scrub(self, text: str) -> str:
        return scrub_paths(text, self.uploads, self.home)


def scrub_paths(text: str, uploads: Path, home: Path | None) -> str:
    """``text`` with the server's paths replaced: one in the upload area by the file's name
    (``/home/x/.ragkeel/uploads/t/c/policy.md`` -> ``policy.md``), any other under the home
    directory by ``[server]`` (each as given and as resolved)."""
    for root, in_uploads in ((uploads, True), (home, False)):
        if root is None:
            continue
        for form in dict.fromkeys((root, root.resolve())):
            text = _replace_paths(text, form, in_uploads)
    return text


_PATH_REST = r"[^\s'\"`:,;)\]}>]*"  # a path in a message ends at a quote, a space, ":"...


def _replace_paths(text: str, root: Path, uploads: bool) -> str:
    def shown(match: re.Match[str]) -> str:
        return _shown(match.group(0), root, uploads)

    return re.sub(re.escape(str(root)) + _PATH_REST, shown, text)


def _shown(path: str, root: Path, uploads: bool) -> str:
    name = file_name(path) if uploads and path.rstrip("/\\") != str(root) else ""
    return name if name and name != TEXT_DIR else "[server]"


def internal_id(
    store: ManagedStore, key: bytes, scope: AccessScope, collection: str, document_id: str
) -> str | None:
    """The internal id of the document clients call ``document_id`` in ``collection``, among
    those ``scope`` sees; ``None`` for an unknown, hidden or another tenant's id."""
    if not document_id.startswith(PREFIX):
        return None
    for ids in store.documents_by_source(collection, scope=scope).values():
        for internal in ids:
            if hmac.compare_digest(public_id(key, scope.tenant, internal), document_id):
                return internal
    return None

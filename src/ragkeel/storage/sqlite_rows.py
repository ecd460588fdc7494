"""Rows of the SQLite store read back as values: a chunk row as a ``Chunk``, and a page of a
collection's documents with their ACL, chunks and vectors as ``StoredDocument`` records (the
read side of ``ragkeel collections copy``, issue 13), and the chunks' keyword texts a
reindex re-analyses (issue 15).

The caller holds the store's lock and, for ``read_page``, one read transaction, so a page's
documents, chunks and vectors come from one snapshot.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ragkeel.storage.base import StoredDocument
from ragkeel.types import Chunk, Document

# the columns ``chunk_of`` reads, over ``chunks c JOIN collections k ON k.name = c.collection``
CHUNK_COLUMNS = (
    "c.id, c.document_id, k.label, c.ordinal, c.text, c.start, c.end_, c.title, c.source, "
    "c.heading_path, c.page, c.token_count, c.metadata"
)


def chunk_of(row: Sequence[Any]) -> Chunk:
    """A ``Chunk`` from a row of ``CHUNK_COLUMNS``."""
    return Chunk(
        id=row[0],
        document_id=row[1],
        collection=row[2],
        ordinal=row[3],
        text=row[4],
        start=row[5],
        end=row[6],
        title=row[7],
        source=row[8],
        heading_path=tuple(json.loads(row[9])),
        page=row[10],
        token_count=row[11],
        metadata=json.loads(row[12]),
    )


def read_page(
    conn: sqlite3.Connection,
    key: str,
    after: str,
    limit: int,
    acl: str,
    acl_params: Sequence[object],
) -> list[StoredDocument]:
    """Up to ``limit`` documents of the collection stored under ``key`` with ids after
    ``after`` that pass ``acl`` (over alias ``d``), in id order, each with its chunks (by
    ordinal) and their vectors."""
    docs = conn.execute(
        "SELECT d.id, k.label, d.source, d.title, d.text, d.content_hash, d.metadata, k.tenant "
        "FROM documents d JOIN collections k ON k.name = d.collection "
        f"WHERE d.collection=? AND d.id > ? AND {acl} ORDER BY d.id LIMIT ?",
        (key, after, *acl_params, limit),
    ).fetchall()
    if not docs:
        return []
    first, last = docs[0][0], docs[-1][0]
    principals: dict[str, set[str]] = {}
    for doc_id, principal in conn.execute(
        "SELECT document_id, principal FROM document_principals "
        "WHERE collection=? AND document_id BETWEEN ? AND ?",
        (key, first, last),
    ):
        principals.setdefault(doc_id, set()).add(principal)
    chunks: dict[str, list[tuple[Chunk, bytes]]] = {}
    dim = 0
    for row in conn.execute(
        f"SELECT {CHUNK_COLUMNS}, v.vector FROM chunks c "
        "JOIN collections k ON k.name = c.collection "
        "JOIN chunk_vectors v ON v.chunk_rowid = c.rowid "
        "WHERE c.collection=? AND c.document_id BETWEEN ? AND ? "
        "ORDER BY c.document_id, c.ordinal",
        (key, first, last),
    ):
        blob = bytes(row[13])
        dim = len(blob) // 4
        chunks.setdefault(str(row[1]), []).append((chunk_of(row), blob))
    out: list[StoredDocument] = []
    for row in docs:
        doc_chunks = chunks.get(row[0], [])
        vectors = (
            np.frombuffer(b"".join(b for _, b in doc_chunks), np.float32).reshape(
                len(doc_chunks), dim
            )
            if doc_chunks
            else np.zeros((0, dim), np.float32)
        )
        document = Document(
            id=row[0],
            collection=row[1],
            source=row[2],
            title=row[3],
            text=row[4],
            content_hash=row[5],
            metadata=json.loads(row[6]),
            tenant=row[7],
            principals=frozenset(principals.get(row[0], ())),
        )
        out.append(StoredDocument(document, [c for c, _ in doc_chunks], vectors.copy()))
    return out


def keyword_texts(conn: sqlite3.Connection, key: str, page: int = 500) -> Iterator[tuple[int, str]]:
    """(rowid, the text the keyword index analyses) of every chunk of the collection stored
    under ``key``, by rowid, read ``page`` rows at a time (a reindex updates as it goes)."""
    after = 0
    while True:
        rows = conn.execute(
            f"SELECT c.rowid, {CHUNK_COLUMNS} FROM chunks c JOIN collections k "
            "ON k.name = c.collection WHERE c.collection=? AND c.rowid > ? "
            "ORDER BY c.rowid LIMIT ?",
            (key, after, page),
        ).fetchall()
        yield from ((int(r[0]), chunk_of(r[1:]).index_text()) for r in rows)
        if len(rows) < page:
            return
        after = int(rows[-1][0])

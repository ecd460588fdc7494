"""The PostgreSQL + pgvector store (issue 13): ``storage.backend: postgres``.

- ``schema.py``: versioned migrations (``schema_version``), run by ``ragkeel db upgrade`` or on
  start-up (``storage.postgres.migrate_on_start``);
- ``store.py``: ``PostgresDocumentStore`` — documents, chunks, postings and vectors, one
  transaction per document, tenants and ACLs as in SQLite;
- ``search.py``: BM25 in SQL over a postings table, and pgvector HNSW / exact dense search;
- ``filters.py``: ``Filter`` and ``AccessScope`` rendered to PostgreSQL.

Needs the ``scale`` extra (psycopg, psycopg-pool, pgvector); only the container imports this
package, and only when the setting selects it.
"""

from ragkeel.storage.postgres.store import PostgresDocumentStore

__all__ = ["PostgresDocumentStore"]

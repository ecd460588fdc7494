"""Storage: documents, chunks and their two search indexes behind small Protocols
(``base.py``), with SQLite as the in-process default (``sqlite.py``) and PostgreSQL + pgvector
for more than one process or machine (``postgres/``, issue 13; both pass the same contract
suites).

Tenants and ACLs (issue 11). Every document belongs to a tenant and may name ACL principals
(users or groups; none: public within the tenant). A document's identity is (tenant,
collection, document id): the same collection name in two tenants is two collections, and a
second tenant uploading ``policy.md`` writes a second document instead of replacing the
first. The SQLite store keeps this with the least change to what was there: a collection is
stored under a key built from its tenant and name (the plain name for the default tenant, so a
store from before tenants keeps its rows and segment caches; ``schema.py``), and each such
collection keeps its own segments, so a search only opens the caller's tenant's segments. The
ACL is a row mask ANDed with the filter's inside the keyword and the dense search
(``sqlite_search.py``). Every read, change and search takes an ``AccessScope``; what it may not
see is absent, never an error (``tenancy.py``). A client ``Filter`` only narrows: it names a
collection *within* the scope's tenant and cannot name a tenant or ACL (``filters.py``).
"""

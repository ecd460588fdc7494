"""Who is calling: API keys and what they allow (issue 11).

- ``scopes.py``: ``Scope`` (query < ingest < admin) and ``Identity``, the holder of a verified
  key, which becomes the request's ``ragkeel.types.AccessScope``;
- ``keys.py``: ``SqliteKeyStore``, the keys in ``$RAGKEEL_HOME/keys.db`` (salted hashes only;
  created, listed and revoked with ``ragkeel keys``), and ``authenticate(token)``;
- ``edge.py``: ``EdgePolicy``, the settings of the HTTP edge the API needs (``api.auth``,
  ``api.docs``, ``api.cors_origins``), ``auto`` resolved against the address ``serve`` binds.

``Container.keys`` and ``Container.edge`` build them; the API (``api/auth.py``) applies them.
"""

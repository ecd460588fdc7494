"""Answer caches (issue 14): a question asked again is answered from a stored answer, without
retrieval or a model call.

``answers.py`` is the cache the answer flow calls (``generation/cached.py``'s hook): the exact
key (``keys.py``), the semantic lookup (``semantic_index.py`` keeps the candidates; the
matcher and its guards are ``semantic.py``/``guards.py``), what is worth keeping. The answers
are bytes (``codec.py``) in a ``CacheBackend`` (``backends.py``: in-process LRU, the tiered
LRU-before-another; ``sqlite_backend.py``; ``redis_backend.py``), all passing the contract
suite ``ragkeel.testing.contracts.answer_cache``. Built by ``Container.answer_cache`` from the
``cache`` settings.
"""

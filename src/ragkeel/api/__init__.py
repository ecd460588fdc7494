"""The HTTP API (FastAPI): ``create_app(container)``; ``ragkeel serve`` runs it with uvicorn.

Layout: ``app.py`` (factory + lifespan), ``routes/`` (one module per resource), ``schemas.py``
and ``openai_schemas.py`` (bodies), ``problems.py`` (the only error → HTTP mapping,
problem+json), ``sse.py`` (event framing), ``event_pump.py`` (a sync generator in a thread,
cancelled on disconnect), ``answers.py`` (the answer flow + traces), ``uploads.py``,
``request_limits.py`` (body and question limits), ``state.py``, ``tracing.py``, ``auth.py`` (API
keys, each route's scope, the caller's ``AccessScope``, cross-origin refusal),
``key_schemas.py`` (bodies of ``routes/keys.py``).
"""

from __future__ import annotations

from ragkeel.api.app import create_app

__all__ = ["create_app"]

"""HTTP routes, one module per resource; ``ROUTERS`` is what ``create_app`` mounts."""

from __future__ import annotations

from fastapi import APIRouter

from ragkeel.api.routes.chat import router as chat
from ragkeel.api.routes.documents import router as documents
from ragkeel.api.routes.feedback import router as feedback
from ragkeel.api.routes.health import router as health
from ragkeel.api.routes.jobs import router as jobs
from ragkeel.api.routes.keys import router as keys
from ragkeel.api.routes.models import router as models
from ragkeel.api.routes.query import router as query
from ragkeel.api.routes.search import router as search
from ragkeel.api.routes.traces import router as traces

ROUTERS: tuple[APIRouter, ...] = (query, chat, search, documents, keys, health, feedback)
ROUTERS += (traces,)  # issue 11: trace and cost reads
ROUTERS += (jobs,)  # issue 13: the ingestion job queue
ROUTERS += (models,)  # issue 15: the OpenAI model listing for chat clients

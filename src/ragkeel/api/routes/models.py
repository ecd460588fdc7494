"""``GET /v1/models`` and ``GET /v1/models/{id}``, OpenAI-compatible (issue 15): what a chat
client (Open WebUI, any OpenAI client) may put in ``model`` when it calls
``/v1/chat/completions``.

- ``ragkeel``: answers over every collection the caller may read (what a question without a
  collection searches);
- ``ragkeel/<collection>``: answers from that collection only, one entry per collection the
  caller may read: its own tenant's collections (never another tenant's), and, for a key
  limited to some ACL principals, only collections with at least one document it may see.

A chat request naming any other model — or a collection the caller may not read, which gets
the same answer as one that does not exist, so names cannot be probed — is refused with 404
``MODEL_NOT_FOUND`` before any work (``collection_of``). No ``model`` at all is ``ragkeel``.
``created`` is when this server process started (collections record no creation time);
``owned_by`` is ``ragkeel`` for the base model and the tenant for a collection. Who may call:
scope ``query``, as ``/v1/chat/completions``.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.concurrency import run_in_threadpool

from ragkeel.api.auth import caller_scope, require
from ragkeel.api.openai_schemas import ModelListOut, ModelOut
from ragkeel.api.state import ApiState, get_state
from ragkeel.errors import NotFoundError
from ragkeel.storage.base import ManagedStore
from ragkeel.storage.tenancy import MAX_NAME
from ragkeel.types import AccessScope

BASE_MODEL = "ragkeel"
PREFIX = BASE_MODEL + "/"
MODEL_NOT_FOUND = "MODEL_NOT_FOUND"
MAX_MODEL_ID = len(PREFIX) + MAX_NAME  # a collection name is at most MAX_NAME characters
STARTED = int(time.time())  # the models' "created"

router = APIRouter(tags=["openai"])


@router.get("/v1/models", response_model=ModelListOut, dependencies=[Depends(require("query"))])
async def list_models(
    state: Annotated[ApiState, Depends(get_state)],
    scope: Annotated[AccessScope, Depends(caller_scope)],
) -> ModelListOut:
    """``ragkeel`` and one ``ragkeel/<collection>`` per collection the caller may read."""
    names = await run_in_threadpool(readable_collections, state.container.store, scope)
    models = [_model(BASE_MODEL, BASE_MODEL)]
    models += [_model(PREFIX + name, scope.tenant) for name in names]
    return ModelListOut(data=models)


@router.get(
    "/v1/models/{model_id:path}",
    response_model=ModelOut,
    dependencies=[Depends(require("query"))],
)
async def retrieve_model(
    model_id: Annotated[str, Path(min_length=1, max_length=MAX_MODEL_ID)],
    state: Annotated[ApiState, Depends(get_state)],
    scope: Annotated[AccessScope, Depends(caller_scope)],
) -> ModelOut:
    """One model of the list; 404 ``MODEL_NOT_FOUND`` for any other id."""
    collection = await run_in_threadpool(collection_of, model_id, state.container.store, scope)
    return _model(model_id, BASE_MODEL if collection is None else scope.tenant)


def collection_of(model: str | None, store: ManagedStore, scope: AccessScope) -> str | None:
    """The collection a request's ``model`` names: None for ``ragkeel`` (or no model: every
    collection the caller may read), the collection of ``ragkeel/<collection>``; else
    ``NotFoundError`` ``MODEL_NOT_FOUND`` (a collection the caller may not read included)."""
    if model is None or model == BASE_MODEL:
        return None
    if model.startswith(PREFIX) and _readable(store, model[len(PREFIX) :], scope):
        return model[len(PREFIX) :]
    raise NotFoundError(
        f"no model {model!r}",
        code=MODEL_NOT_FOUND,
        hint=f"GET /v1/models lists them: {BASE_MODEL!r} (every collection) and "
        f"'{PREFIX}<collection>' for each collection you may read",
    )


def readable_collections(store: ManagedStore, scope: AccessScope) -> list[str]:
    """The caller's tenant's collections it may read, by name (see the module docstring)."""
    names = sorted(store.collections(scope=scope))
    return [name for name in names if scope.all_principals or _sees_any(store, name, scope)]


def _readable(store: ManagedStore, collection: str, scope: AccessScope) -> bool:
    if not collection or collection not in store.collections(scope=scope):
        return False
    return scope.all_principals or _sees_any(store, collection, scope)


def _sees_any(store: ManagedStore, collection: str, scope: AccessScope) -> bool:
    """Whether ``scope`` sees at least one document of ``collection`` (one document read)."""
    documents = store.iter_documents(collection, scope=scope, batch_size=1)
    try:
        return next(iter(documents), None) is not None
    finally:
        close = getattr(documents, "close", None)
        if close is not None:
            close()


def _model(model_id: str, owner: str) -> ModelOut:
    return ModelOut(id=model_id, created=STARTED, owned_by=owner)

"""``GET /v1/search?q=&k=&mode=&collection=``: ranked hits with their scores and the
retrieval confidence signals (no answer, no model)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from ragkeel.api.auth import caller_scope, require
from ragkeel.api.schemas import SearchModeIn, SearchOut
from ragkeel.api.state import ApiState, get_state
from ragkeel.storage.filters import Filter
from ragkeel.types import AccessScope

router = APIRouter(tags=["search"])


@router.get("/v1/search", response_model=SearchOut, dependencies=[Depends(require("query"))])
async def search(
    state: Annotated[ApiState, Depends(get_state)],
    scope: Annotated[AccessScope, Depends(caller_scope)],
    q: Annotated[str, Query(min_length=1, description="the query")],
    k: Annotated[int | None, Query(ge=1, le=1000, description="hits returned")] = None,
    mode: Annotated[SearchModeIn | None, Query(description="default: the server's")] = None,
    collection: Annotated[str | None, Query(description="one collection only")] = None,
) -> SearchOut:
    """Search the index: BM25, dense or hybrid (fused). Documents are named by public ids and
    file names (``document_id``, ``source``), never server paths."""
    query = state.limits.check_question(q, name="query")
    container = state.container
    flt = Filter(collection=collection) if collection is not None else None
    result = await run_in_threadpool(
        container.retriever.search,
        query,
        k or container.search_k,
        mode=mode or container.search_mode,
        flt=flt,
        scope=scope,
    )
    return SearchOut.from_result(state.public_view(scope).result(result))

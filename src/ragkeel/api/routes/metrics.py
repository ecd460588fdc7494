"""``GET /metrics``: the Prometheus exposition (``observability/metrics.py``; every series
``ragkeel_*``).

Who may scrape (``observability.metrics``): ``auto`` (the default) follows ``api.auth``: the
operator's key when keys are required (``admin`` and ``trusted_proxy``, ``auth.require_operator``:
the series name every tenant, so a tenant's own admin key is 403; Prometheus sends it as a bearer token:
``authorization: {credentials_file: ...}`` in its scrape config), anyone when they are not;
``public``: anyone, always (a scraper on a private network; the series name tenants and
collections); ``off``: not served. Not in the OpenAPI document, like ``/docs``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ragkeel.api.auth import PUBLIC, require, require_operator
from ragkeel.api.state import ApiState, get_state

PATH = "/metrics"


def metrics_router(*, public: bool) -> APIRouter:
    """The ``/metrics`` route; ``public``: no key needed even when ``api.auth`` requires
    keys (the app also lists the path as public for ``AuthMiddleware``)."""
    router = APIRouter(tags=["metrics"])

    @router.get(
        PATH,
        include_in_schema=False,
        dependencies=[Depends(require(PUBLIC))]
        if public
        else [Depends(require("admin")), Depends(require_operator)],
    )
    async def metrics(state: Annotated[ApiState, Depends(get_state)]) -> Response:
        """Every ``ragkeel_*`` series, in Prometheus text format."""
        body, content_type = await run_in_threadpool(state.container.metrics.exposition)
        return Response(body, media_type=content_type)

    return router

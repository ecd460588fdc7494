"""``POST /v1/feedback``: a user's rating of an answer, by its ``trace_id`` (issue 12).

A key may rate the traces it may read (``auth.trace_reader``, the rule of ``GET /v1/traces``):
its own tenant's; a trace of another tenant is 404 ``TRACE_NOT_FOUND``, exactly like an id that
does not exist, so ids cannot be probed — for a tenant's ``admin`` key too. The operator (auth
off, or an ``admin`` key made ``--trusted-proxy``) may rate any. A bad rating or a comment over the bound is 422
``FEEDBACK_INVALID``; a malformed body 422 ``VALIDATION_ERROR``. The rating is stored beside the
trace (``observability/feedback.py``); nothing about the trace itself changes.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from ragkeel.api.auth import Caller, TraceReader, require, trace_reader
from ragkeel.api.feedback_schemas import FeedbackIn, FeedbackOut
from ragkeel.api.state import ApiState, get_state
from ragkeel.errors import TraceNotFoundError
from ragkeel.observability.feedback import Feedback, check_comment, parse_rating
from ragkeel.types import DEFAULT_TENANT

router = APIRouter(tags=["feedback"])


@router.post(
    "/v1/feedback",
    status_code=201,
    response_model=FeedbackOut,
    responses={404: {"description": "no trace with this id that the caller may see"}},
)
async def post_feedback(
    body: FeedbackIn,
    caller: Annotated[Caller, Depends(require("query"))],
    reader: Annotated[TraceReader, Depends(trace_reader)],
    state: Annotated[ApiState, Depends(get_state)],
) -> FeedbackOut:
    """Rate an answer: ``up``/``down`` or 1-5, with an optional comment."""
    rating = parse_rating(body.rating)
    comment = check_comment(body.comment)
    container = state.container
    trace = await run_in_threadpool(
        partial(container.traces.get, body.trace_id.lower(), tenants=reader.tenants)
    )
    store = container.feedback
    if trace is None or store is None:
        raise TraceNotFoundError(
            f"no trace {body.trace_id}", hint="send the trace_id an answer of yours returned"
        )
    feedback = Feedback(trace.id, rating, trace.tenant or DEFAULT_TENANT, comment)
    stored = await run_in_threadpool(store.add, feedback)
    if container.metrics.enabled:
        container.metrics.feedback.labels(str(rating)).inc()
    return FeedbackOut.of(stored)

"""``GET /v1/traces``, ``GET /v1/traces/{id}``, ``GET /v1/costs``: the recorded requests and
what they cost, read over HTTP (``observability/trace_store.py``, ``cost_ledger.py``; the CLI's
``ragkeel traces``/``trace``/``costs`` read the same files).

Who sees what (issue 11; ``auth.TraceReader``): a key reads its own tenant's traces and costs
only (an ``admin`` key: all of its tenant's, past the ACLs); the operator reads every
tenant's (``tenant=`` narrows) — an ``admin`` key made with ``--trusted-proxy`` on the server,
or anyone while auth is off, as the CLI. A ``tenant=`` naming another tenant than a
caller's own narrows to nothing (an empty list, zero totals), and another tenant's
trace id — or a prefix of one — is 404 ``TRACE_NOT_FOUND`` exactly like a missing one, so ids
cannot be probed.

One trace in full: the retrieved chunks (ids, fused score, each retriever's rank and score,
and the chunk's title, source and text when it is still stored; documents named like in
answers, by service ids and file names, never server paths: ``api/public_ids.py``),
the gate, the prompt (its text only if ``observability.keep_prompt_text`` kept it), the
output, the citations, every gateway attempt and decision, tokens, cost, stage latencies. A
caller that does not see every document of its tenant (a key with ACL principals, not
``admin``) gets the trace without the chunks it may not read now — and then without the
prompt text and the output, which may quote them (``withheld`` says what was left out). Error
and degradation messages of failures behind the service are the fixed client sentences of
``problems.client_message`` unless the caller reads every tenant (an operator); server
paths in them are replaced for everyone.

Bad filters: malformed values are 422 ``VALIDATION_ERROR``; ``since`` after ``until`` is 422
``TRACE_FILTER_INVALID``. Paging: ``next_before`` of one page is ``before=`` of the next.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from starlette.concurrency import run_in_threadpool

from ragkeel.api.auth import TraceReader, require, trace_reader
from ragkeel.api.problems import client_message
from ragkeel.api.public_ids import PublicView
from ragkeel.api.schemas import CitationOut, GateOut
from ragkeel.api.state import ApiState, get_state
from ragkeel.api.trace_schemas import (
    CostsOut,
    CostTotalOut,
    OutcomeOut,
    PromptOut,
    TraceDegradedOut,
    TraceErrorOut,
    TraceHitOut,
    TraceListOut,
    TraceOut,
    TraceSummaryOut,
    WithheldOut,
)
from ragkeel.errors import NotFoundError, TraceFilterError
from ragkeel.observability import names
from ragkeel.observability.cost_ledger import CostTotal
from ragkeel.observability.trace import Trace
from ragkeel.observability.trace_store import (
    ID_LENGTH,
    MAX_SEARCH_LIMIT,
    MAX_TEXT_FILTER,
    MIN_PREFIX,
    TraceFilter,
)
from ragkeel.types import DEFAULT_TENANT, AccessScope, Chunk

router = APIRouter(tags=["traces"])
Reader = Annotated[TraceReader, Depends(trace_reader)]
State = Annotated[ApiState, Depends(get_state)]
MAX_UNIX_S = 1e11  # year 5138: a finite bound (no inf/nan), far past any trace
TRACE_ID_PATTERN = rf"^[0-9a-fA-F]{{{MIN_PREFIX},{ID_LENGTH}}}$"
Since = Annotated[float | None, Query(ge=0, le=MAX_UNIX_S, description="Unix seconds, inclusive")]
Until = Annotated[float | None, Query(ge=0, le=MAX_UNIX_S, description="Unix seconds, exclusive")]
TenantFilter = Annotated[
    str | None,
    Query(min_length=1, max_length=256, description="one tenant only (admin: any tenant)"),
]
_QUERY = [Depends(require("query"))]


@router.get("/v1/traces", response_model=TraceListOut, dependencies=_QUERY)
async def list_traces(
    reader: Reader,
    state: State,
    outcome: Annotated[OutcomeOut | None, Query()] = None,
    route: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    model: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    tenant: TenantFilter = None,
    since: Since = None,
    until: Until = None,
    text: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_TEXT_FILTER,
            description="a substring of the question or the output",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SEARCH_LIMIT)] = 50,
    before: Annotated[
        str | None,
        Query(
            pattern=rf"^[0-9a-fA-F]{{1,{ID_LENGTH}}}$",
            description="the next_before of the previous page",
        ),
    ] = None,
) -> TraceListOut:
    """The caller's traces, newest first, filtered; paged with ``before``."""
    where = TraceFilter(
        tenants=reader.narrowed(tenant),
        outcome=outcome,
        route=route,
        model=model,
        since=since,
        until=until,
        text=text,
        limit=limit,
        before=before.lower() if before else None,
    )
    found = await run_in_threadpool(state.container.traces.search, where)
    more = len(found) == limit
    return TraceListOut(
        traces=[TraceSummaryOut.of(s) for s in found],
        next_before=found[-1].id if found and more else None,
    )


@router.get("/v1/traces/{trace_id}", response_model=TraceOut, dependencies=_QUERY)
async def get_trace(
    trace_id: Annotated[
        str,
        Path(
            pattern=TRACE_ID_PATTERN,
            description=f"a trace id, or a unique prefix of {MIN_PREFIX} or more hex digits",
        ),
    ],
    reader: Reader,
    state: State,
) -> TraceOut:
    """One trace in full, as far as the caller may see it."""
    return await run_in_threadpool(_read_trace, state, reader, trace_id)


@router.get("/v1/costs", response_model=CostsOut, dependencies=_QUERY)
async def costs(
    reader: Reader,
    state: State,
    by: Annotated[Literal["model", "tenant", "day"], Query()] = "model",
    tenant: TenantFilter = None,
    since: Since = None,
    until: Until = None,
) -> CostsOut:
    """Calls, tokens and USD per model, tenant or UTC day, the costliest (or newest) first."""
    _check_window(since, until)
    tenants = reader.narrowed(tenant)
    ledger = state.container.ledger
    rows = await run_in_threadpool(
        lambda: ledger.totals(by, start=since, end=until, tenants=tenants)
    )
    return CostsOut(
        by=by,
        since=since,
        until=until,
        totals=[CostTotalOut.of(t) for t in rows],
        total=CostTotalOut.of(_sum(rows)),
    )


def _check_window(since: float | None, until: float | None) -> None:
    if since is not None and until is not None and since > until:
        raise TraceFilterError(
            f"since ({since}) is after until ({until})",
            hint="since and until are Unix seconds; since <= until",
        )


def _sum(rows: list[CostTotal]) -> CostTotal:
    return CostTotal(
        "total",
        sum(t.calls for t in rows),
        sum(t.prompt_tokens for t in rows),
        sum(t.completion_tokens for t in rows),
        math.fsum(t.cost for t in rows),
    )


def _read_trace(state: ApiState, reader: TraceReader, trace_id: str) -> TraceOut:
    container = state.container
    trace = container.traces.get(trace_id, tenants=reader.tenants)
    if trace is None:  # another tenant's trace does not exist here
        raise NotFoundError(
            f"no trace {trace_id!r}", code="TRACE_NOT_FOUND", hint="GET /v1/traces lists them"
        )
    ids = [c.chunk_id for c in trace.retrieved] + [c.chunk_id for c in trace.citations]
    chunks: dict[str, Chunk] = {}
    owner = trace.tenant or DEFAULT_TENANT  # whose documents: names their public ids
    for scope in _views(reader, trace):  # the trace's own tenant first
        missing = [i for i in ids if i not in chunks]
        found = container.store.get_chunks(missing, scope=scope) if missing else {}
        if found and not chunks:
            owner = scope.tenant
        for chunk_id, chunk in found.items():
            chunks.setdefault(chunk_id, chunk)
    view = state.public_view(AccessScope(owner))
    restricted = not reader.access.all_principals
    return project(trace, view, chunks, restricted=restricted, operator=reader.every_tenant)


def _views(reader: TraceReader, trace: Trace) -> list[AccessScope]:
    """The scopes the trace's chunks are looked up in: the caller's own; for a reader past the
    ACLs, its tenant's every document — and the default tenant's, where the documents are
    while auth is off (a trace's tenant is then the rate-limit bucket, ``api/admission.py``)."""
    if not reader.access.all_principals:
        return [reader.access]
    tenants = dict.fromkeys((trace.tenant or DEFAULT_TENANT, DEFAULT_TENANT))
    if not reader.every_tenant:
        tenants = {reader.access.tenant: None}
    return [AccessScope(t, all_principals=True) for t in tenants]


def project(
    trace: Trace,
    view: PublicView,
    chunks: Mapping[str, Chunk] | None = None,
    *,
    restricted: bool,
    operator: bool,
) -> TraceOut:
    """``trace`` as the API shows it: documents named by ``view`` (public ids and file names,
    as in answers; ``api/public_ids.py``). ``chunks``: its chunks that are stored and visible;
    ``restricted``: the caller sees only those (the others, the prompt text and the output are
    withheld); ``operator``: messages of failures behind the service are shown whole (server
    paths replaced all the same)."""
    seen = chunks or {}
    hidden = {c.chunk_id for c in trace.retrieved} | {c.chunk_id for c in trace.citations}
    hidden = hidden - seen.keys() if restricted else set()
    retrieved = [
        TraceHitOut.of(rank, r, seen.get(r.chunk_id), view)
        for rank, r in enumerate(trace.retrieved, start=1)
        if r.chunk_id not in hidden
    ]
    citations = [
        CitationOut.model_validate(view.citation(c))
        for c in trace.citations
        if c.chunk_id not in hidden
    ]

    def message(code: str, text: str | None) -> str | None:
        if text is None:
            return None
        return view.scrub(text if operator else client_message(code, text))

    error = None
    if trace.error_code:
        error = TraceErrorOut(
            code=trace.error_code,
            message=message(trace.error_code, trace.error_message) or "",
        )
    degraded = None
    if trace.degraded_reason:
        degraded = TraceDegradedOut(
            reason=trace.degraded_reason,
            detail=message(trace.degraded_reason, trace.degraded_detail),
        )
    prompt = trace.prompt
    attributes = trace.attributes()
    if attributes.get(names.RETRIEVAL_TOP_CHUNK_ID) in hidden:
        del attributes[names.RETRIEVAL_TOP_CHUNK_ID]
    return TraceOut(
        id=trace.id,
        created_at=trace.created_iso,
        route=trace.route,
        outcome=trace.outcome,
        tenant=trace.tenant,
        question=trace.question,
        mode=trace.mode,
        model=trace.model,
        template_version=trace.template_version,
        grounded=trace.grounded,
        input_tokens=trace.input_tokens,
        output_tokens=trace.output_tokens,
        cost=trace.cost,
        latency_ms=dict(trace.latency_ms),
        error=error,
        degraded=degraded,
        gate=GateOut.model_validate(trace.gate) if trace.gate else None,
        retrieved=retrieved,
        prompt=PromptOut.of(prompt, keep_text=not hidden) if prompt else None,
        output=None if hidden else trace.output,
        citations=citations,
        gateway=dict(trace.gateway) if trace.gateway is not None else None,
        attributes=attributes,
        withheld=(
            WithheldOut(
                chunks=len(hidden),
                prompt_text=prompt is not None and prompt.text is not None,
                output=True,
            )
            if hidden
            else None
        ),
    )

"""The traces pages' data: the list's filters (``TraceQuery``, from the page's GET form), the
traces a viewer may see that match them (``find``), and one trace with what the page shows
beside it (``TraceDetail``: chunk texts read with the viewer's document scope, the feedback).

Tenant scoping: a viewer bound to a tenant sees that tenant's traces only — its ``tenant``
filter is ignored, and another tenant's trace id is "not found", exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from ragkeel.errors import TraceFilterError
from ragkeel.observability import names
from ragkeel.observability.feedback import Feedback, SqliteFeedbackStore
from ragkeel.observability.trace import OUTCOMES, Trace
from ragkeel.observability.trace_store import TraceFilter, TraceStore, TraceSummary
from ragkeel.storage.base import ManagedStore
from ragkeel.types import DEFAULT_TENANT, AccessScope, Chunk, Citation
from ragkeel.ui.charts import Waterfall, waterfall
from ragkeel.ui.session import Viewer

PAGE = 50
MAX_TEXT = 200
_NOT_A_TIME = "not a date and time (YYYY-MM-DDTHH:MM, UTC)"
# the routes traces are recorded under (the API records its paths, api/routes/query.py, chat.py)
ROUTES = ("/v1/query", "/v1/chat/completions", names.ROUTE_CLI_ASK, names.ROUTE_EVAL_RUN)


@dataclass(frozen=True, slots=True)
class TraceQuery:
    outcome: str = ""
    route: str = ""
    model: str = ""
    tenant: str = ""
    since: str = ""  # the form's value, YYYY-MM-DDTHH:MM (UTC)
    until: str = ""
    text: str = ""
    before: str = ""  # paging: traces older than this id
    errors: tuple[str, ...] = ()

    @classmethod
    def of(cls, params: Mapping[str, str]) -> TraceQuery:
        """The filters of a request's query string; a value that is not valid is dropped and
        said in ``errors`` (the page shows it)."""

        def get(name: str) -> str:
            return params.get(name, "").strip()[:MAX_TEXT]

        q = cls(
            get("outcome"),
            get("route"),
            get("model"),
            get("tenant"),
            get("since"),
            get("until"),
            get("q"),
            get("before").lower(),
        )
        errors = []
        if q.outcome and q.outcome not in OUTCOMES:
            errors.append(f"unknown outcome {q.outcome!r}")
            q = replace(q, outcome="")
        if q.since and _timestamp(q.since) is None:
            errors.append(f"since: {_NOT_A_TIME}")
            q = replace(q, since="")
        if q.until and _timestamp(q.until) is None:
            errors.append(f"until: {_NOT_A_TIME}")
            q = replace(q, until="")
        return replace(q, errors=tuple(errors))

    def params(self, **changes: str) -> dict[str, str]:
        """The non-empty filters as query parameters (for the paging links)."""
        values = {
            "outcome": self.outcome,
            "route": self.route,
            "model": self.model,
            "tenant": self.tenant,
            "since": self.since,
            "until": self.until,
            "q": self.text,
            "before": self.before,
        } | changes
        return {k: v for k, v in values.items() if v}


def _timestamp(value: str) -> float | None:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def tenant_of(trace: Trace) -> str:
    return trace.tenant or DEFAULT_TENANT


def tenants_of(viewer: Viewer, asked: str = "") -> frozenset[str] | None:
    """Whose traces a page reads: the viewer's tenant, or (an admin viewer) the one asked for,
    or every tenant."""
    if viewer.tenant is not None:
        return frozenset({viewer.tenant})
    return frozenset({asked}) if asked else None


def find(store: TraceStore, q: TraceQuery, viewer: Viewer) -> tuple[list[TraceSummary], bool, str]:
    """One page of the matching traces a viewer may see, newest first, whether there are
    more, and why the filters were refused ("" when they were not)."""
    try:
        where = TraceFilter(
            tenants=tenants_of(viewer, q.tenant),
            outcome=q.outcome or None,  # type: ignore[arg-type]  # checked by TraceQuery.of
            route=q.route or None,
            model=q.model or None,
            since=_timestamp(q.since) if q.since else None,
            until=_timestamp(q.until) if q.until else None,
            text=q.text or None,
            limit=PAGE + 1,
            before=q.before or None,
        )
    except TraceFilterError as exc:
        return [], False, exc.message
    found = store.search(where)
    return found[:PAGE], len(found) > PAGE, ""


def visible(store: TraceStore, trace_id: str, viewer: Viewer) -> Trace | None:
    """The trace with this id (or unique prefix) if the viewer may see it."""
    return store.get(trace_id, tenants=tenants_of(viewer))


@dataclass(frozen=True, slots=True)
class ChunkRow:
    rank: int
    chunk_id: str
    document_id: str
    score: float
    keyword_rank: int | None
    keyword_score: float | None
    dense_rank: int | None
    dense_score: float | None
    cited: bool
    chunk: Chunk | None  # None: deleted since, or outside the viewer's document scope


@dataclass(frozen=True, slots=True)
class TraceDetail:
    trace: Trace
    chunks: tuple[ChunkRow, ...]
    waterfall: Waterfall
    feedback: tuple[Feedback, ...]
    attempts: tuple[Mapping[str, object], ...] = ()
    decisions: tuple[Mapping[str, object], ...] = ()
    stages: Mapping[str, float] = field(default_factory=dict)


class DocumentNames(Protocol):
    """How documents are named to a web client (``api/public_ids.py``'s ``PublicView``: the
    API's public ids and file names, never a server path), passed in by ``api/app.py``."""

    def id(self, document_id: str) -> str: ...

    def source(self, source: str, document_id: str) -> str: ...

    def citation(self, c: Citation) -> Citation: ...

    def scrub(self, text: str) -> str: ...


NamesOf = Callable[[AccessScope], DocumentNames]


def shown(trace: Trace, names: DocumentNames) -> Trace:
    """``trace`` as the page shows it: cited documents by public id and file name, server
    paths taken out of its messages and prompt."""

    def scrub(text: str | None) -> str | None:
        return None if text is None else names.scrub(text)

    prompt = trace.prompt
    if prompt is not None and prompt.text is not None:
        prompt = replace(prompt, text=names.scrub(prompt.text))
    return replace(
        trace,
        citations=tuple(names.citation(c) for c in trace.citations),
        retrieved=tuple(replace(c, document_id=names.id(c.document_id)) for c in trace.retrieved),
        error_message=scrub(trace.error_message),
        degraded_detail=scrub(trace.degraded_detail),
        prompt=prompt,
    )


def detail(
    trace: Trace,
    viewer: Viewer,
    store: ManagedStore,
    feedback: SqliteFeedbackStore | None,
    names_of: NamesOf,
) -> TraceDetail:
    scope = viewer.access(tenant_of(trace))
    names = names_of(scope)  # the ids the API gave the caller of that scope
    ids = [c.chunk_id for c in trace.retrieved]
    found = store.get_chunks(ids, scope=scope) if ids else {}
    texts = {
        i: replace(
            c, document_id=names.id(c.document_id), source=names.source(c.source, c.document_id)
        )
        for i, c in found.items()
    }
    cited = {c.chunk_id for c in trace.citations}
    view = shown(trace, names)
    rows = tuple(
        ChunkRow(
            i + 1,
            c.chunk_id,
            c.document_id,
            c.score,
            c.keyword_rank,
            c.keyword_score,
            c.dense_rank,
            c.dense_score,
            c.chunk_id in cited,
            texts.get(c.chunk_id),
        )
        for i, c in enumerate(view.retrieved)
    )
    gateway = trace.gateway or {}
    return TraceDetail(
        view,
        rows,
        waterfall(trace.latency_ms),
        tuple(feedback.for_trace(trace.id)) if feedback is not None else (),
        attempts=_records(gateway.get("attempts")),
        decisions=_records(gateway.get("decisions")),
        stages=dict(trace.latency_ms),
    )


def _records(value: object) -> tuple[Mapping[str, object], ...]:
    items: Sequence[object] = value if isinstance(value, list) else []
    return tuple(i for i in items if isinstance(i, dict))

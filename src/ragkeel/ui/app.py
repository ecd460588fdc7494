"""``build_ui``: the dashboard as a Starlette app that ``api/app.py`` mounts under ``/ui``.

Pages (all GET, none changes anything): ``/ui/traces`` (filters in the query string),
``/ui/traces/{id}``, ``/ui/overtime``, ``/ui/health``, ``/ui/reports/{name}``. State changes
are POSTs from this origin only (``same_origin``; ``api/auth.py``'s ``CrossOriginMiddleware``
runs before, too): ``/ui/login``, ``/ui/logout``, ``/ui/traces/{id}/feedback``.

Who sees what: ``session.py``. With ``api.auth`` required the API's ``AuthMiddleware`` lets
``/ui`` through without a bearer key and every page here asks for a session instead (no session:
a redirect to ``/ui/login``); evaluation reports are for admin viewers only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from importlib.resources import files
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from ragkeel.container import Container
from ragkeel.errors import RagkeelError, UnauthenticatedError
from ragkeel.observability.feedback import Feedback, check_comment, parse_rating
from ragkeel.observability.trace import OUTCOMES
from ragkeel.ui import overtime, reports, traces
from ragkeel.ui.render import SecurityHeaders, page
from ragkeel.ui.session import COOKIE, OPERATOR, Sessions, Viewer, load_secret

log = logging.getLogger("ragkeel.ui")
PREFIX = "/ui"
SECRET_FILE = "ui-session.key"
MAX_KEY_CHARS = 256
DAYS = (7, 14, 30, 90)
STATIC = {"ui.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}
Readiness = Callable[[bool], Awaitable[Mapping[str, Any]]]  # details? -> what /readyz says
Alerts = Callable[[], Sequence[Mapping[str, Any]]]


@dataclass(slots=True)
class Ui:
    container: Container
    auth_required: bool
    readiness: Readiness
    names_of: traces.NamesOf
    alerts: Alerts | None = None  # the monitor's firing alerts, when one runs
    drift: Alerts | None = None  # the monitor's last drift verdicts (rule, status, details)
    _sessions: Sessions | None = None

    @property
    def sessions(self) -> Sessions:
        if self._sessions is None:
            secret = load_secret(self.container.home / SECRET_FILE)
            ttl = self.container.ui.session_ttl_s
            self._sessions = Sessions(self.container.keys, secret, ttl)
        return self._sessions

    def firing(self, viewer: Viewer) -> Sequence[Mapping[str, Any]]:
        """The monitor's firing alerts (none while no monitor runs), for every page's banner;
        service-wide, so shown to admins (and the operator with auth off) only."""
        return self.alerts() if self.alerts is not None and viewer.admin else ()

    async def viewer(self, request: Request) -> Viewer | None:
        if not self.auth_required:
            return OPERATOR
        cookie = request.cookies.get(COOKIE)
        return await run_in_threadpool(self.sessions.viewer, cookie) if cookie else None


def build_ui(
    container: Container,
    *,
    auth_required: bool,
    readiness: Readiness,
    names_of: traces.NamesOf,
    alerts: Alerts | None = None,
    drift: Alerts | None = None,
) -> SecurityHeaders:
    """The dashboard over ``container`` (opened and closed by the API's lifespan);
    ``readiness(details)`` is what ``/readyz`` says, ``names_of(scope)`` how documents are
    named to that caller (public ids and file names, never server paths)."""
    ui = Ui(container, auth_required, readiness, names_of, alerts, drift)

    def route(
        path: str, handler: Callable[[Ui, Request, Viewer], Awaitable[Response]], **kw: Any
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            viewer = await ui.viewer(request)
            if viewer is None:
                return RedirectResponse(f"{PREFIX}/login", status_code=303)
            try:
                return await handler(ui, request, viewer)
            except RagkeelError as exc:
                log.warning("dashboard page %s failed: %s", request.url.path, exc)
                return _error(viewer, 503, f"{exc.code}: {exc.hint or 'see the server log'}")

        return Route(path, endpoint, **kw)

    app = Starlette(
        routes=[
            Route("/", lambda _: RedirectResponse(f"{PREFIX}/traces", status_code=303)),
            Route("/login", partial(login_form, ui), methods=["GET"]),
            Route("/login", partial(login, ui), methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/static/{name}", static_file),
            route("/traces", trace_list),
            route("/traces/{trace_id}", trace_page),
            route("/traces/{trace_id}/feedback", rate, methods=["POST"]),
            route("/overtime", over_time_page),
            route("/health", health_page),
            route("/reports/{name:path}", report_file),
        ]
    )
    return SecurityHeaders(app)


def _context(viewer: Viewer, active: str, **values: Any) -> dict[str, Any]:
    return {"prefix": PREFIX, "viewer": viewer, "active": active, "firing": (), **values}


def _error(viewer: Viewer, status: int, message: str) -> Response:
    return page("error.html.j2", status, **_context(viewer, "", status=status, message=message))


def same_origin(request: Request) -> bool:
    """A POST from a page of this origin (or from a client that is not a browser)."""
    site = request.headers.get("sec-fetch-site", "").lower()
    if site and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin", "").lower().rstrip("/")
    if not origin:
        return True
    host = request.headers.get("host", "").lower()
    return origin.partition("://")[2] == host


async def login_form(ui: Ui, request: Request) -> Response:
    if not ui.auth_required:
        return RedirectResponse(f"{PREFIX}/traces", status_code=303)
    return page("login.html.j2", **_context(OPERATOR, "login", error=None))


async def login(ui: Ui, request: Request) -> Response:
    if not ui.auth_required:
        return RedirectResponse(f"{PREFIX}/traces", status_code=303)
    if not same_origin(request):
        return _error(OPERATOR, 403, "sign-in from another web origin is refused")
    form = await request.form()
    key = form.get("key")
    token = key if isinstance(key, str) and len(key) <= MAX_KEY_CHARS else ""
    try:
        viewer, cookie = await run_in_threadpool(ui.sessions.sign_in, token)
    except UnauthenticatedError:
        context = _context(
            OPERATOR, "login", error="That key is not valid (or revoked, or expired)."
        )
        return page("login.html.j2", 401, **context)
    log.info("dashboard sign-in: %s", viewer.label)
    response = RedirectResponse(f"{PREFIX}/traces", status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=ui.container.ui.session_ttl_s,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    if not same_origin(request):
        return _error(OPERATOR, 403, "sign-out from another web origin is refused")
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


async def static_file(request: Request) -> Response:
    """The stylesheet and the icon: the only files served from the package."""
    name = request.path_params["name"]
    if name not in STATIC:
        return Response("not found", status_code=404, media_type="text/plain")
    body = files("ragkeel.ui").joinpath("static", name).read_bytes()
    return Response(body, media_type=STATIC[name], headers={"cache-control": "max-age=300"})


async def trace_list(ui: Ui, request: Request, viewer: Viewer) -> Response:
    q = traces.TraceQuery.of(request.query_params)
    found, more, refused = await run_in_threadpool(traces.find, ui.container.traces, q, viewer)
    latest = {}
    if found and ui.container.feedback is not None:
        ids = [t.id for t in found]
        latest = await run_in_threadpool(ui.container.feedback.latest, ids)
    older = q.params(before=found[-1].id) if more and found else None
    context = _context(
        viewer,
        "traces",
        q=q,
        refused=refused,
        traces=found,
        feedback=latest,
        older=older,
        outcomes=OUTCOMES,
        routes=traces.ROUTES,
        firing=ui.firing(viewer),
    )
    return page("traces.html.j2", **context)


async def trace_page(ui: Ui, request: Request, viewer: Viewer) -> Response:
    trace_id = request.path_params["trace_id"]
    c = ui.container
    trace = await run_in_threadpool(traces.visible, c.traces, trace_id, viewer)
    if trace is None:
        return _error(viewer, 404, "No trace with this id.")
    view = await run_in_threadpool(traces.detail, trace, viewer, c.store, c.feedback, ui.names_of)
    return page(
        "trace.html.j2",
        **_context(viewer, "traces", d=view, t=view.trace, firing=ui.firing(viewer)),
    )


async def rate(ui: Ui, request: Request, viewer: Viewer) -> Response:
    if not same_origin(request):
        return _error(viewer, 403, "feedback from another web origin is refused")
    c = ui.container
    trace = await run_in_threadpool(
        traces.visible, c.traces, request.path_params["trace_id"], viewer
    )
    if trace is None or c.feedback is None:
        return _error(viewer, 404, "No trace with this id.")
    form = await request.form()
    try:
        rating = parse_rating(form.get("rating"))
        comment_value = form.get("comment")
        comment = check_comment(comment_value if isinstance(comment_value, str) else None)
    except RagkeelError as exc:
        return _error(viewer, 422, exc.message)
    feedback = Feedback(trace.id, rating, traces.tenant_of(trace), comment)
    await run_in_threadpool(c.feedback.add, feedback)
    return RedirectResponse(f"{PREFIX}/traces/{trace.id}", status_code=303)


async def over_time_page(ui: Ui, request: Request, viewer: Viewer) -> Response:
    raw = request.query_params.get("days", "14")
    days = int(raw) if raw.isdigit() and int(raw) in DAYS else 14
    figures = await run_in_threadpool(overtime.over_time, ui.container.traces, viewer, days)
    drift = ui.drift() if ui.drift is not None and viewer.admin else None
    context = _context(
        viewer,
        "overtime",
        o=figures,
        days=days,
        choices=DAYS,
        firing=ui.firing(viewer),
        drift=drift,
        monitor=ui.drift is not None,
    )
    return page("overtime.html.j2", **context)


async def health_page(ui: Ui, request: Request, viewer: Viewer) -> Response:
    ready = await ui.readiness(viewer.admin)  # a tenant's viewer: the verdict, as a probe
    alerts = ui.firing(viewer) if ui.alerts is not None and viewer.admin else None
    listed = (
        await run_in_threadpool(reports.list_reports, ui.container.reports_dir)
        if viewer.admin
        else None
    )
    context = _context(
        viewer, "health", ready=ready, alerts=alerts, reports=listed, firing=alerts or ()
    )
    return page("health.html.j2", **context)


async def report_file(ui: Ui, request: Request, viewer: Viewer) -> Response:
    if not viewer.admin:
        return _error(viewer, 403, "Evaluation reports are for admin keys.")
    name = request.path_params["name"]
    path = await run_in_threadpool(reports.report_path, ui.container.reports_dir, name)
    if path is None:
        return _error(viewer, 404, "No such report.")
    headers = {"content-security-policy": reports.REPORT_CSP}
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=headers)

"""Who is calling, and may they: API keys at the HTTP edge (issue 11).

``AuthMiddleware`` runs before routing and before any body is read. With auth required
(``ApiState.auth_required``: ``api.auth``, ``auto`` resolved by ``serve`` against the address it
binds, ``identity/edge.py``) it takes the key from ``Authorization: Bearer rk_<id>_<secret>`` —
only from there: keys in a URL end up in access logs and browser histories — and checks it in
the key store (``identity/keys.py``: every request reads the key's row, so a revoked or expired
key is refused from the next request on). No key, or a bad one: 401 ``UNAUTHENTICATED`` with
``WWW-Authenticate: Bearer``. The check is a SQLite primary-key lookup and one HMAC, made on the
event loop (microseconds; a thread-pool hop would cost more under load, see ``get_state``).

A verified key becomes the request's ``Caller`` (``request.state.caller``): its ``Identity`` and
the ``AccessScope`` (tenant, ACL principals) every read must be filtered by — routes take it with
``Depends(caller_scope)``; trace and cost reads take ``Depends(trace_reader)`` (``TraceReader``:
the caller's tenant; every tenant for the operator — auth off, or a trusted-proxy admin key).
``X-Tenant`` and ``X-Principals`` (comma-separated) name the end user's tenant and principals,
and are honoured only from a key created with ``--trusted-proxy``; from any other key they are refused (403 ``FORBIDDEN``), not ignored, so a
client that believes it is switching tenants learns it is not. With auth off every request is
tenant ``DEFAULT_TENANT`` with no ACL restriction inside it (``OPEN_CALLER``: as before issue
11, and as the CLI sees the store), and the
headers keep their old meaning (``X-Tenant`` names a rate-limit bucket, ``api/admission.py``).

Each route states the scope it needs (``Depends(require("query"))`` ... ``require(PUBLIC)``);
a missing scope is 403 ``FORBIDDEN``. ``tests/api/test_auth.py`` walks ``app.routes``: a new
route without a decision fails it. Every refusal (401, and 403 for a scope) is counted in
``ragkeel_auth_failures_total`` by code (``observability/metrics.py``); the tenant of a verified
caller goes on the request context, so the request's log lines say whose it is.

``CrossOriginMiddleware``: a page on another web origin can make a browser POST a form (a
"simple" request: no CORS preflight) to a ragkeel on localhost. State-changing requests (POST,
PUT, PATCH, DELETE) whose ``Origin`` is not this host, or that a browser marks
``Sec-Fetch-Site: cross-site`` / ``same-site``, are refused with 403 ``CROSS_ORIGIN`` unless the
origin is listed in ``api.cors_origins``. Clients that are not browsers send neither header and
pass. CORS itself (``CORSMiddleware``) is installed only when ``api.cors_origins`` lists origins.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ragkeel.api.problems import client_message, error_headers, problem, status_for
from ragkeel.errors import (
    CrossOriginError,
    ForbiddenError,
    KeySpecError,
    RagkeelError,
    UnauthenticatedError,
)
from ragkeel.identity import scopes
from ragkeel.identity.keys import SqliteKeyStore, check_principal, check_tenant
from ragkeel.identity.scopes import Identity
from ragkeel.observability.context import bind_tenant
from ragkeel.types import AccessScope

TENANT_HEADER = "x-tenant"
PRINCIPALS_HEADER = "x-principals"
MAX_FORWARDED_PRINCIPALS = 256
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PUBLIC: Final = "public"  # a route anyone may call (liveness and readiness probes)
Needed = Literal["query", "ingest", "admin", "public"]  # a Scope, or PUBLIC


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent the request: ``identity`` (None while auth is off, or on a public route) and
    the data it may see."""

    identity: Identity | None = None
    access: AccessScope = field(default_factory=AccessScope)

    @property
    def authenticated(self) -> bool:
        return self.identity is not None


ANONYMOUS_CALLER = Caller()  # a public route's caller: the default tenant's public data at most
# with auth off, as before issue 11: the one default tenant, every document in it (like the CLI)
OPEN_CALLER = Caller(access=AccessScope(all_principals=True))


def caller_of(request: Request) -> Caller:
    """The request's caller (``AuthMiddleware`` sets it; a bare request is anonymous)."""
    caller = getattr(request.state, "caller", None)
    return caller if isinstance(caller, Caller) else ANONYMOUS_CALLER


async def caller_scope(request: Request) -> AccessScope:
    """The routes' dependency: the ``AccessScope`` this request's reads are filtered by."""
    return caller_of(request).access


@dataclass(frozen=True, slots=True)
class TraceReader:
    """Whose traces and costs a request may read (issue 11): ``tenants`` (None: every tenant;
    else the caller's own) and the caller's ``access`` (its ACL principals, for what a trace
    shows of the documents it touched).

    Every tenant is read by the operator only: anyone while auth is off (as ``ragkeel traces``
    sees them), or an ``admin`` key that is also ``trusted_proxy`` (made on the server's
    command line only, and already able to act as any tenant) speaking for itself (no
    ``X-Tenant``/``X-Principals``). Any other ``admin`` key reads its own tenant's traces and
    costs: tenants get admin keys to delete their documents and manage their keys, and one
    tenant's admin reading another tenant's questions and answers would be a cross-tenant leak
    (``tests/api/test_tenant_canaries.py`` probes it)."""

    tenants: frozenset[str] | None
    access: AccessScope

    @property
    def every_tenant(self) -> bool:
        return self.tenants is None

    def narrowed(self, tenant: str | None) -> frozenset[str] | None:
        """The tenants read when the client asks for ``tenant`` only: a filter narrows, never
        widens (another tenant than the caller's own: nothing)."""
        if tenant is None:
            return self.tenants
        return frozenset({tenant}) if self.tenants is None else self.tenants & {tenant}


def _operator(request: Request) -> bool:
    """Whether the request comes from the service's operator: auth off, or an ``admin`` key
    made ``--trusted-proxy`` speaking for itself (no ``X-Tenant``/``X-Principals``)."""
    caller = caller_of(request)
    if not getattr(getattr(request.app.state, "ragkeel", None), "auth_required", False):
        return True
    identity = caller.identity
    return identity is not None and (
        identity.scope == "admin"
        and identity.trusted_proxy
        and caller.access == identity.access_scope()  # not speaking for an end user
    )


async def trace_reader(request: Request) -> TraceReader:
    """The routes' dependency for trace and cost reads (``routes/traces.py``, the dashboard)."""
    caller = caller_of(request)
    if _operator(request):
        return TraceReader(None, caller.access)
    return TraceReader(frozenset({caller.access.tenant}), caller.access)


async def require_operator(request: Request) -> None:
    """A route dependency for service-wide data (``GET /metrics``: every tenant's tokens and
    cost): the operator only, 403 ``FORBIDDEN`` for any other key — a tenant's ``admin``
    key included. Put after ``require(...)``, which answers 401 first."""
    if not _operator(request):
        refused = ForbiddenError(
            "this route shows every tenant's data: it needs the operator's key",
            hint="an admin key made with --trusted-proxy on the server",
        )
        _count_failure(getattr(request.app.state, "ragkeel", None), refused)
        raise refused


def require(needed: Needed) -> Callable[[Request], Awaitable[Caller]]:
    """A route dependency: the caller's key must allow ``needed`` (a ``Scope``), or ``PUBLIC``.
    With auth off every caller is allowed."""
    scope = next((s for s in scopes.SCOPES if s == needed), None)
    if scope is None and needed != PUBLIC:
        raise ValueError(f"unknown scope {needed!r}")

    async def check(request: Request) -> Caller:
        caller = caller_of(request)
        state = getattr(request.app.state, "ragkeel", None)
        if scope is None or not getattr(state, "auth_required", False):
            return caller
        identity = caller.identity
        if identity is None:  # the middleware lets no such request through; be sure
            raise UnauthenticatedError("an API key is required", hint=_SEND_KEY)
        if not identity.allows(scope):
            refused = ForbiddenError(
                f"this key's scope {identity.scope!r} does not allow {request.method} "
                f"{request.url.path} (needs {needed!r})",
                hint="ask an admin for a key with that scope",
            )
            _count_failure(state, refused)
            raise refused
        return caller

    check.needed_scope = needed  # type: ignore[attr-defined]  # scope_decisions reads it
    return check


def needed_scope(dependency: Callable[..., Any]) -> str | None:
    """The scope a ``require`` dependency checks, or None for any other callable."""
    value = getattr(dependency, "needed_scope", None)
    return value if isinstance(value, str) else None


def scope_decisions(routers: Iterable[APIRouter]) -> dict[tuple[str, str], str | None]:
    """``(method, path) -> the scope it needs`` (``PUBLIC``; None: no decision) of every route
    of ``routers``."""
    out: dict[tuple[str, str], str | None] = {}
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            calls = [d.call for d in route.dependant.dependencies if d.call is not None]
            decided = next((s for c in calls if (s := needed_scope(c)) is not None), None)
            out.update({(method, route.path): decided for method in route.methods or ()})
    return out


_SEND_KEY = "send Authorization: Bearer rk_<id>_<secret> (ragkeel keys create)"


def _count_failure(state: Any, exc: RagkeelError) -> None:
    """Count a refused caller in the metrics (issue 12); never raises."""
    try:
        state.container.metrics.auth_failed(exc.code)
    except Exception:  # a metric never fails the request
        logging.getLogger("ragkeel.api").warning("could not count an auth failure", exc_info=True)


class AuthMiddleware:
    """Authenticates every HTTP request but those to ``public_paths`` when
    ``app.state.ragkeel.auth_required``; sets ``request.state.caller``."""

    def __init__(
        self, app: ASGIApp, public_paths: Collection[str] = (), public_prefixes: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.public_paths = frozenset(public_paths)
        # a mounted app that checks its callers itself (the dashboard's sessions, ``ui/``)
        self.public_prefixes = tuple(public_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = getattr(scope["app"].state, "ragkeel", None)
        if not getattr(state, "auth_required", False):
            caller = OPEN_CALLER
        elif scope["path"] in self.public_paths or scope["path"].startswith(self.public_prefixes):
            caller = ANONYMOUS_CALLER
        else:
            try:
                caller = _authenticate(state, _headers(scope))
            except RagkeelError as exc:
                _count_failure(state, exc)  # ragkeel_auth_failures_total
                await refuse(exc, scope, receive, send)
                return
        scope.setdefault("state", {})["caller"] = caller
        bind_tenant(caller.access.tenant)  # the request's log lines and metrics say whose it is
        await self.app(scope, receive, send)


def _authenticate(state: Any, headers: dict[str, str]) -> Caller:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError("an API key is required", hint=_SEND_KEY)
    identity: Identity = state.container.keys.authenticate(token.strip())
    tenant = headers.get(TENANT_HEADER, "").strip() or None
    principals_header = headers.get(PRINCIPALS_HEADER)
    if (tenant is not None or principals_header is not None) and not identity.trusted_proxy:
        raise ForbiddenError(
            "X-Tenant and X-Principals are honoured only from a trusted proxy's key",
            hint="drop the headers, or use a key created with --trusted-proxy",
        )
    principals = None  # the key's own, unless the proxy speaks for an end user
    if principals_header is not None:
        names = [p.strip() for p in principals_header.split(",") if p.strip()]
        if len(names) > MAX_FORWARDED_PRINCIPALS:
            raise KeySpecError(
                f"X-Principals names {len(names)} principals; at most "
                f"{MAX_FORWARDED_PRINCIPALS} are accepted",
                hint="forward the user and the groups that matter for the ACLs",
            )
        principals = [check_principal(p) for p in names]
    if tenant is not None:
        check_tenant(tenant)
        principals = principals or []  # the proxy's own principals never pass to its users
    return Caller(identity, identity.access_scope(tenant=tenant, principals=principals))


def identity_of_bearer(keys: SqliteKeyStore, authorization: str | None) -> Identity | None:
    """The identity of an ``Authorization: Bearer`` key, or None when there is none or it is
    not valid: for a public route that shows more to a caller who proves who it is."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        return keys.authenticate(token.strip())
    except RagkeelError:
        return None


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers, lower-case names; a repeated header keeps its first value."""
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


async def refuse(exc: RagkeelError, scope: Scope, receive: Receive, send: Send) -> None:
    """Send ``exc`` as its problem+json response (from a middleware, before routing)."""
    extra = {"hint": exc.hint} if exc.hint else None
    response = problem(
        status_for(exc),
        exc.code,
        client_message(exc.code, exc.message),
        instance=scope["path"],
        headers=error_headers(exc),
        extra=extra,
    )
    await response(scope, receive, send)


class CrossOriginMiddleware:
    """Refuses state-changing requests a browser sent from another origin (see above)."""

    def __init__(self, app: ASGIApp, allowed_origins: Collection[str] = ()) -> None:
        self.app = app
        self.allowed = frozenset(o.lower().rstrip("/") for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            reason = self._cross_origin(_headers(scope))
            if reason is not None:
                exc = CrossOriginError(
                    f"{scope['method']} from another web origin is refused ({reason})",
                    hint="call the API from a non-browser client, or list the page's origin "
                    "in api.cors_origins",
                )
                await refuse(exc, scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _cross_origin(self, headers: dict[str, str]) -> str | None:
        origin = headers.get("origin", "").strip().lower().rstrip("/")
        if origin and origin in self.allowed:
            return None
        site = headers.get("sec-fetch-site", "").strip().lower()
        if site in ("cross-site", "same-site"):
            return f"Sec-Fetch-Site: {site}"
        if origin and _host_of(origin) != headers.get("host", "").strip().lower():
            return f"Origin {origin} is not this host"
        return None


def _host_of(origin: str) -> str:
    """``host[:port]`` of an origin, without the scheme's default port (``null`` stays as is,
    and matches no host)."""
    scheme, sep, rest = origin.partition("://")
    if not sep:
        return origin
    default = {"http": ":80", "https": ":443"}.get(scheme, "")
    return rest.removesuffix(default) if default else rest

"""``GET /healthz`` (the process answers) and ``GET /readyz`` (the store opens; the answer path
is not wedged; the chat model is loaded, or ``degraded`` with the reason: answers are extractive
until it is; each remote deployment's circuit breaker, ``degraded`` with ``CIRCUIT_OPEN`` when
no deployment and no local model can take a call; with ``redis.url``, whether the shared Redis
answers, ``degraded`` with ``SHARED_STATE_UNAVAILABLE`` when it does not: limits are open and
paid calls refused until it is back, ``shared_state.py``). ``/readyz`` never loads the model
itself.

Wedged (503, ``ready: false``, ``degraded_reason: ANSWER_PATH_WEDGED`` and the reason in
``answer_path``): an answer thread or the local model's generation slot has been busy longer
than the request deadline (plus a grace). A balancer then stops sending traffic and an
orchestrator restarts the process, instead of every new question hanging behind the stuck one
while the probes say ready (issue 9).

``/readyz`` is public (probes carry no key), so with auth required an anonymous probe gets the
verdict without the details: ``ready``, ``degraded``, ``degraded_reason`` and, per component,
its state and code — no document counts (they say how much every tenant stored), no model
or store error messages (they name server paths), no deployment names. An admin key sent
with the probe, or auth off (a local operator), gets the full body (issue 11)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ragkeel.api.auth import PUBLIC, identity_of_bearer, require
from ragkeel.api.state import ApiState, get_state
from ragkeel.errors import RagkeelError

router = APIRouter(tags=["health"])
WEDGED = "ANSWER_PATH_WEDGED"
SHARED_STATE_UNAVAILABLE = "SHARED_STATE_UNAVAILABLE"


@router.get("/healthz", dependencies=[Depends(require(PUBLIC))])
async def healthz() -> dict[str, str]:
    """Liveness: the process is up and serving."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    dependencies=[Depends(require(PUBLIC))],
    responses={503: {"description": "the store cannot be opened, or the answer path is wedged"}},
)
async def readyz(request: Request, state: Annotated[ApiState, Depends(get_state)]) -> JSONResponse:
    """Readiness: 200 when questions can be answered (perhaps degraded), else 503; the details
    only to an admin key or with auth off."""
    details = not state.auth_required or _admin(request, state)
    body = await readiness(state, details=details)
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


async def readiness(state: ApiState, *, details: bool) -> dict[str, Any]:
    """What ``/readyz`` answers: everything, or with ``details`` off the verdict only (the
    dashboard's health page shows the same to its viewer)."""
    store = await run_in_threadpool(_store_status, state)
    shared = await run_in_threadpool(state.container.shared_state_reachable)
    model, reason = _model_status(state)
    gateway = state.container.gateway
    deployments = gateway.readiness() if gateway is not None else []
    unavailable = all(d["state"] in ("open", "cooling") for d in deployments)
    if reason is None and deployments and unavailable and state.local_model() is None:
        reason = "CIRCUIT_OPEN"
    if reason is None and shared is False:
        reason = SHARED_STATE_UNAVAILABLE
    path = state.answer_path()
    if path["wedged"]:
        reason = WEDGED
    ready = store["ok"] and not path["wedged"]
    body = {
        "ready": ready,
        "degraded": reason is not None,
        "degraded_reason": reason,
        "store": store,
        "model": model,
        "answer_path": path,
        "deployments": deployments,
        "shared_state": {"configured": shared is not None, "reachable": shared},
    }
    return body if details else _verdict(body)


def _admin(request: Request, state: ApiState) -> bool:
    identity = identity_of_bearer(state.container.keys, request.headers.get("authorization"))
    return identity is not None and identity.allows("admin")


def _verdict(body: dict[str, Any]) -> dict[str, Any]:
    """What an anonymous probe may see of the readiness ``body``."""
    store, model, path = body["store"], body["model"], body["answer_path"]
    return {
        "ready": body["ready"],
        "degraded": body["degraded"],
        "degraded_reason": body["degraded_reason"],
        "store": {"ok": store["ok"], **({"code": store["code"]} if "code" in store else {})},
        "model": {"loaded": model["loaded"]},
        "answer_path": {"wedged": path["wedged"]},
        "deployments": [{"state": d["state"]} for d in body["deployments"]],
    }


def _store_status(state: ApiState) -> dict[str, Any]:
    try:
        stats = state.container.store.stats()
    except RagkeelError as exc:
        return {"ok": False, "code": exc.code, "error": str(exc)}
    return {"ok": True, "documents": stats.documents, "chunks": stats.chunks}


def _model_status(state: ApiState) -> tuple[dict[str, Any], str | None]:
    answering = state.answerer.model
    if answering is None:
        return {"name": None, "loaded": False}, "NO_MODEL"
    model = state.local_model()
    if model is None or model.name != answering.name:  # remote or scripted: nothing to load
        return {"name": answering.name, "loaded": True}, None
    info: dict[str, Any] = {"name": model.name, "loaded": model.loaded}
    if model.loaded:
        return info, None
    if state.model_error is not None:
        info["error"] = str(state.model_error)
        return info, state.model_error.code
    if not model.file.path.exists():
        return info, "MODEL_MISSING"
    return info, "MODEL_NOT_LOADED"  # loads on the first question (or at start-up by serve)

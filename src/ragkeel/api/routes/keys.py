"""``GET /v1/keys``, ``POST /v1/keys``, ``DELETE /v1/keys/{id}``: an ``admin`` key manages the
keys of its own tenant (``identity/keys.py``). Keys of other tenants are invisible (an id of
another tenant is ``KEY_NOT_FOUND``), and a key that may name other tenants (``trusted_proxy``)
can only be made on the command line (``ragkeel keys create --trusted-proxy``): nothing here
lets an admin reach past its tenant.

The routes need a verified key even while ``api.auth`` is off (then 403 ``FORBIDDEN``: without
keys there is no tenant to manage keys for; use ``ragkeel keys``). The created token is sent
once, with ``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from ragkeel.api.auth import Caller, require
from ragkeel.api.key_schemas import KeyCreatedOut, KeyCreateIn, KeyListOut, KeyOut
from ragkeel.api.state import ApiState, get_state
from ragkeel.errors import ForbiddenError, NotFoundError
from ragkeel.identity.keys import ApiKey, SqliteKeyStore
from ragkeel.identity.scopes import Identity

router = APIRouter(tags=["keys"])
KEY_ID_PATTERN = r"^[0-9a-fA-F]{16}$"  # a malformed id is 422 VALIDATION_ERROR
Admin = Annotated[Caller, Depends(require("admin"))]


def _admin(caller: Caller) -> Identity:
    if caller.identity is None:
        raise ForbiddenError(
            "keys are managed over HTTP only with an admin key (api.auth is off)",
            hint="use ragkeel keys on the server",
        )
    return caller.identity


@router.get("/v1/keys", response_model=KeyListOut)
async def list_keys(caller: Admin, state: Annotated[ApiState, Depends(get_state)]) -> KeyListOut:
    """The keys of the caller's tenant (never a secret)."""
    who = _admin(caller)
    store = state.container.keys
    keys = await run_in_threadpool(store.all)
    now = store.clock.now()
    mine = [KeyOut.from_key(k, now) for k in keys if k.tenant == who.tenant]
    return KeyListOut(tenant=who.tenant, keys=mine)


@router.post("/v1/keys", status_code=201, response_model=KeyCreatedOut)
async def create_key(
    body: KeyCreateIn, caller: Admin, state: Annotated[ApiState, Depends(get_state)]
) -> JSONResponse:
    """A new key for the caller's tenant; its token is in this answer only."""
    who = _admin(caller)
    store = state.container.keys
    key, token = await run_in_threadpool(
        lambda: store.create(
            who.tenant, body.scope, expires_in_days=body.expires_days, principals=body.principals
        )
    )
    out = KeyCreatedOut(key=KeyOut.from_key(key, store.clock.now()), token=token)
    return JSONResponse(
        out.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"}
    )


@router.delete("/v1/keys/{key_id}", response_model=KeyOut)
async def revoke_key(
    key_id: Annotated[str, Path(pattern=KEY_ID_PATTERN, description="16 hex digits")],
    caller: Admin,
    state: Annotated[ApiState, Depends(get_state)],
) -> KeyOut:
    """Revoke a key of the caller's tenant: refused from the next request on."""
    who = _admin(caller)
    store = state.container.keys
    key = await run_in_threadpool(_revoke_own, store, who, key_id)
    return KeyOut.from_key(key, store.clock.now())


def _revoke_own(store: SqliteKeyStore, who: Identity, key_id: str) -> ApiKey:
    key = store.get(key_id)
    if key is None or key.tenant != who.tenant:  # another tenant's key does not exist here
        raise NotFoundError(
            f"no API key {key_id!r} in tenant {who.tenant!r}",
            code="KEY_NOT_FOUND",
            hint="GET /v1/keys lists them",
        )
    return store.revoke(key.id)

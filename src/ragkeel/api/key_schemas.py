"""Bodies of the key routes (``routes/keys.py``): what an admin may ask for, and a key as the
API shows it (never its secret or hash; the token only in the creation's answer)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ragkeel.identity.keys import ApiKey
from ragkeel.identity.scopes import Scope


class KeyCreateIn(BaseModel):
    """A new key for the caller's own tenant. ``trusted_proxy`` keys (which may name any
    tenant) are made with ``ragkeel keys create --trusted-proxy`` only."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    scope: Scope
    expires_days: float | None = Field(default=None, gt=0, le=36_500)
    principals: list[str] = Field(default_factory=list, max_length=100)


class KeyOut(BaseModel):
    id: str
    tenant: str
    scope: Scope
    principals: list[str]
    trusted_proxy: bool
    created: str
    expires: str | None
    revoked: str | None
    last_used: str | None
    status: str

    @classmethod
    def from_key(cls, key: ApiKey, now: float) -> KeyOut:
        data: dict[str, Any] = key.to_dict(now)
        return cls.model_validate(data)


class KeyCreatedOut(BaseModel):
    key: KeyOut
    token: str = Field(description="rk_<id>_<secret>: shown this once, kept nowhere")


class KeyListOut(BaseModel):
    tenant: str
    keys: list[KeyOut]

"""Keeping credentials out of what ragkeel prints, logs and stores (issue 11).

- ``strip_url_credentials(text)``: every ``scheme://user:password@host`` in ``text`` with the
  user-info masked (``scheme://user:**********@host``; a user-info without a password, often a
  token, becomes ``**********@``). Used for ``config show`` and for the URLs that error
  messages name (a provider's or an embedder's ``base_url`` may carry credentials).
- ``is_secret_name(name)``: whether a setting's name says it holds a secret (``api_key``,
  ``key``, ``secret``, ``password``, ``token``, ``*_api_key``...; not ``max_tokens``).
- ``masked(value, name)``: ``value`` with every secret-named member masked and URL credentials
  stripped, recursively (dicts, lists); what a configuration error may quote of its input.

Secrets typed ``SecretStr`` in the settings are masked by pydantic already; these helpers
cover what reaches a message some other way.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "**********"
_URL_USERINFO = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^\s/@:?#]*)(?::(?P<password>[^\s/@?#]*))?@"
)
_SECRET_NAME = re.compile(r"(?:^|_)(?:api_?key|key|secret|password|passwd|token)$", re.IGNORECASE)


def strip_url_credentials(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        if match.group("password") is not None:
            return f"{match.group('scheme')}{match.group('user')}:{MASK}@"
        return f"{match.group('scheme')}{MASK}@"

    return _URL_USERINFO.sub(mask, text)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def masked(value: Any, name: str = "") -> Any:
    """``value`` with secret-named members masked and URL credentials stripped (recursive)."""
    if name and is_secret_name(name) and value is not None:
        return MASK
    if isinstance(value, str):
        return strip_url_credentials(value)
    if isinstance(value, dict):
        return {k: masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v) for v in value]
    return value

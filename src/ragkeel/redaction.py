"""Keeping credentials out of what ragkeel prints, logs and stores (issue 11).

- ``strip_url_credentials(text)``: every ``scheme://user:password@host`` in ``text`` with the
  user-info masked (``scheme://user:**********@host``; a user-info without a password, often a
  token, becomes ``**********@``), and the value of every secret-named query parameter
  (``?api_key=…``, ``&access_token=…``, ``&sig=…``) masked. Used for ``config show`` and for the
  URLs that error messages name (a provider's or an embedder's ``base_url`` may carry
  credentials either way).
- ``is_secret_name(name)``: whether a setting's or a parameter's name says it holds a secret
  (``api_key``, ``api-key``, ``key``, ``secret``, ``password``, ``token``, ``*_api_key``,
  ``x-api-key``...; not ``max_tokens``).
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
_SECRET_NAME = re.compile(
    r"(?:^|[_-])(?:api[_-]?key|key|secret|password|passwd|token)$", re.IGNORECASE
)
# a query parameter inside a URL: ?name=value or &name=value (also ; as separator)
_QUERY_PARAM = re.compile(
    r"(?P<lead>://[^\s?#]*\?|(?<=\S)[&;])(?P<name>[^=&;#\s]+)=(?P<value>[^&;#\s]*)"
)
_SIGNATURE_NAMES = frozenset({"sig", "signature", "x-amz-signature", "x-goog-signature"})


def strip_url_credentials(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        if match.group("password") is not None:
            return f"{match.group('scheme')}{match.group('user')}:{MASK}@"
        return f"{match.group('scheme')}{MASK}@"

    return _mask_query_secrets(_URL_USERINFO.sub(mask, text))


def _mask_query_secrets(text: str) -> str:
    if "=" not in text:
        return text

    def mask(match: re.Match[str]) -> str:
        name = match.group("name")
        if not match.group("value") or not (
            is_secret_name(name) or name.lower() in _SIGNATURE_NAMES
        ):
            return match.group(0)
        return f"{match.group('lead')}{name}={MASK}"

    return _QUERY_PARAM.sub(mask, text)


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

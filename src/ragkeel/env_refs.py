"""``${VAR}`` references in configuration: secrets (and anything else) taken from the
environment when the settings are loaded, so that no key has to be written into ``ragkeel.yaml``.

Every string value of the configuration file (and of the overrides an evaluation config passes
to ``load_settings``) may hold references, at any depth (a deployment in ``gateway.deployments``,
a webhook header)::

    ${NAME}            the variable's value; unset or empty is an error (EnvVarMissingError,
                       CONFIG_ENV_MISSING, naming the variable and the key that refers to it)
    ${NAME:-default}   the variable's value, or ``default`` when it is unset or empty
    $${                a literal ``${`` (nothing is looked up)

``NAME`` is a shell-style name (letters, digits, ``_``; not starting with a digit). Anything
else after ``${`` (a typo such as ``${OPENAI API KEY}``, or no closing brace) is an error too,
never sent as a key.
A value that is exactly one reference becomes the variable's text; references inside a longer
string are replaced in place (``https://user:${PG_PASSWORD}@host/db``). The values are not
logged or quoted anywhere: error messages name the variable, never what it holds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from ragkeel.errors import EnvVarMissingError

_REF = re.compile(r"\$\$\{|\$\{([^}]*)(\}|$)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HINT = "export the variable before starting ragkeel, or give a default: ${NAME:-value}"


def expand(value: Any, environ: Mapping[str, str] | None = None, *, key: str = "") -> Any:
    """``value`` with every ``${NAME}`` reference in its strings replaced (dicts and lists
    walked recursively; other values returned as they are). ``key``: the dotted setting name,
    for the error message."""
    env = os.environ if environ is None else environ
    if isinstance(value, str):
        return _expand_text(value, env, key) if "${" in value else value
    if isinstance(value, dict):
        return {k: expand(v, env, key=f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, env, key=f"{key}[{i}]") for i, v in enumerate(value)]
    return value


def _expand_text(text: str, env: Mapping[str, str], key: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        body = match.group(1)
        name, sep, default = body.partition(":-")
        if not match.group(2) or not _NAME.fullmatch(name):
            raise EnvVarMissingError(
                f"{key or 'a setting'}: ${{{body}}} is not a reference to an environment "
                "variable (write ${NAME} or ${NAME:-default}; $${ for a literal ${)",
                variable=name,
                hint=_HINT,
            )
        found = env.get(name, "")
        if found:
            return found
        if sep:
            return default
        raise EnvVarMissingError(
            f"{key or 'a setting'} refers to the environment variable {name}, which is "
            f"{'empty' if name in env else 'not set'}",
            variable=name,
            hint=_HINT,
        )

    return _REF.sub(substitute, text)

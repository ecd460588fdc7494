"""Versioned prompt templates, stored as data in ``prompts/<version>.yaml``.

A template has a ``version`` (equal to its file name), a ``system`` and a ``user`` message with
the placeholders ``{sources}``, ``{question}`` and ``{refusal}``, substituted in one pass (text
in a question or a source is never itself expanded). The version travels with every answer
into its trace, so a change of wording is a new file, not an edit. ``DEFAULT_TEMPLATE`` is the
shipped one, the default of ``generation.template_version`` too (a test keeps the two equal), so
an answerer built in code prompts as a configured one does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from ragkeel.errors import TemplateError
from ragkeel.gateway.base import ChatMessage

REFUSAL_PHRASE = "I cannot answer this from the provided sources."
DEFAULT_TEMPLATE = "answer_v2"  # the shipped default (generation.template_version)

_PLACEHOLDER = re.compile(r"\{(sources|question|refusal|schema)\}")
_VERSION = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    version: str
    system: str
    user: str

    def render(self, question: str, sources: str, schema: str = "") -> tuple[ChatMessage, ...]:
        values = {
            "sources": sources,
            "question": question,
            "refusal": REFUSAL_PHRASE,
            "schema": schema,
        }

        def fill(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

        return (ChatMessage("system", fill(self.system)), ChatMessage("user", fill(self.user)))


@lru_cache(maxsize=16)
def load_template(version: str = DEFAULT_TEMPLATE) -> PromptTemplate:
    """The template ``prompts/<version>.yaml``; ``TemplateError`` if missing or malformed."""
    if not _VERSION.match(version):
        raise TemplateError(f"invalid template version {version!r}", hint=_hint())
    resource = resources.files("ragkeel.generation").joinpath("prompts", f"{version}.yaml")
    try:
        data = yaml.safe_load(resource.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(f"no prompt template {version!r}", hint=_hint()) from None
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"prompt template {version!r} is unreadable: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != version:
        raise TemplateError(
            f"prompt template {version!r} must be a mapping with version: {version}"
        )
    fields = {key: data.get(key) for key in ("system", "user")}
    if not all(isinstance(text, str) and text.strip() for text in fields.values()):
        raise TemplateError(f"prompt template {version!r} needs non-empty system and user texts")
    if "{sources}" not in str(fields["user"]) or "{question}" not in str(fields["user"]):
        raise TemplateError(
            f"prompt template {version!r}: user text needs {{sources}} and {{question}}"
        )
    return PromptTemplate(version, str(fields["system"]), str(fields["user"]))


def render_prompt(version: str, question: str, sources: str) -> tuple[str, tuple[ChatMessage, ...]]:
    """``(version, messages)`` for ``question`` over the rendered ``sources``."""
    template = load_template(version)
    return template.version, template.render(question, sources)


def available_templates() -> list[str]:
    folder = resources.files("ragkeel.generation").joinpath("prompts")
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def _hint() -> str:
    return "use one of: " + ", ".join(available_templates())

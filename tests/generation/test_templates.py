"""Prompt templates are versioned data; rendering substitutes in one pass."""

from __future__ import annotations

import pytest

from ragkeel.errors import TemplateError
from ragkeel.generation.templates import (
    DEFAULT_TEMPLATE,
    REFUSAL_PHRASE,
    available_templates,
    load_template,
    render_prompt,
)
from ragkeel.settings import GenerationSettings


def test_a_template_renders_system_and_user() -> None:
    version, messages = render_prompt("answer_v1", "Why {sources}?", "[1] Keys\nRotate.")
    assert version == "answer_v1" and DEFAULT_TEMPLATE in available_templates()
    system, user = messages
    assert system.role == "system" and user.role == "user"
    assert REFUSAL_PHRASE in system.content and "[1]" in system.content
    assert "{" not in system.content  # every placeholder filled
    assert user.content.endswith("Question: Why {sources}?")  # question text is not expanded
    assert "[1] Keys\nRotate." in user.content


def test_system_message_is_the_same_for_every_question() -> None:
    template = load_template()
    a = template.render("one?", "[1] x")
    b = template.render("two?", "[1] y")
    assert a[0] == b[0] and a[1] != b[1]


def test_templates_stay_short() -> None:
    template = load_template()
    assert len(template.system.split()) + len(template.user.split()) < 120


@pytest.mark.parametrize("version", ["answer_v999", "../settings", "Answer-V1"])
def test_unknown_or_bad_version_is_a_template_error(version: str) -> None:
    with pytest.raises(TemplateError) as info:
        load_template(version)
    assert info.value.code == "TEMPLATE_INVALID"
    assert "answer_v1" in str(info.value)


def test_the_code_default_template_is_the_shipped_one() -> None:
    """An answerer built in code prompts as a configured one does (generation.template_version)."""
    assert GenerationSettings().template_version == DEFAULT_TEMPLATE

"""Errors of the answer flow. Model failures are the gateway's (``ragkeel.gateway.errors``) and
are not raised from here: the answerer degrades to an extractive answer instead::

    RagkeelError
    └── TemplateError   TEMPLATE_INVALID   a prompt template is missing or malformed
"""

from __future__ import annotations

from ragkeel.errors import RagkeelError


class TemplateError(RagkeelError):
    code = "TEMPLATE_INVALID"

"""``Limits``: the largest request body (uploads included) and the longest question a request
may bring (``api_limits.max_body_bytes`` and ``api_limits.max_question_chars``; built by
``Container.request_limits``). The API enforces them: the body in
``api/request_limits.py``'s ``BodyLimitMiddleware`` (413 ``REQUEST_TOO_LARGE`` before or while
it is read), the question with ``check_question`` (422 ``QUESTION_TOO_LONG``) before retrieval.
"""

from __future__ import annotations

from dataclasses import dataclass

from ragkeel.errors import QueryError, QuestionTooLongError

MAX_BODY_BYTES = 25 * 1024 * 1024  # uploads: a few documents per request
MAX_QUESTION_CHARS = 4_000  # well past any real question, far below the context budget


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = MAX_BODY_BYTES
    max_question_chars: int = MAX_QUESTION_CHARS

    def check_question(self, text: str, *, name: str = "question") -> str:
        """``text`` stripped; ``QueryError`` when empty, ``QuestionTooLongError`` when long."""
        stripped = text.strip()
        if not stripped:
            raise QueryError(f"the {name} is empty", hint=f"send some text in {name!r}")
        if len(stripped) > self.max_question_chars:
            raise QuestionTooLongError(
                f"the {name} has {len(stripped)} characters; "
                f"at most {self.max_question_chars} are allowed",
                hint="shorten it",
            )
        return stripped

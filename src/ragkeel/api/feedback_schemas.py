"""Bodies of ``POST /v1/feedback`` (``routes/feedback.py``): a rating of one traced request, and
the stored rating as the API shows it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from ragkeel.observability.feedback import Feedback

TRACE_ID_PATTERN = r"^[0-9a-fA-F]{32}$"  # the full id the answer returned (no prefixes)


class FeedbackIn(BaseModel):
    """``rating``: ``"up"``, ``"down"`` or 1-5 (checked by ``observability.feedback``: any other
    value is 422 ``FEEDBACK_INVALID``); ``comment`` at most ``MAX_COMMENT_CHARS`` characters."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    trace_id: str = Field(pattern=TRACE_ID_PATTERN, description="the answer's trace_id")
    rating: StrictStr | StrictInt = Field(description='"up", "down", or 1 (bad) to 5 (good)')
    comment: str | None = Field(default=None, description="what was wrong or right")


class FeedbackOut(BaseModel):
    id: int
    trace_id: str
    rating: str | int
    negative: bool
    comment: str | None

    @classmethod
    def of(cls, feedback: Feedback) -> FeedbackOut:
        d = feedback.to_dict()
        return cls(
            id=d["id"],
            trace_id=d["trace_id"],
            rating=d["rating"],
            negative=d["negative"],
            comment=d["comment"],
        )

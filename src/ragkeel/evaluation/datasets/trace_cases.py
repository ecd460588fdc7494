"""Production traces become test cases: the way a real failure turns into a regression test.

``case_from_trace`` keeps it honest: the question is the trace's; nothing the system said is
taken as the truth unless the user says so.

- ``expect``: what the *right* behaviour is. By default the behaviour the trace shows (it
  answered: ``answer``; it refused: ``cannot_answer``), which pins a good answer as a regression
  guard; for a failure, pass the correct one (``--expect``). A trace that ended in an error has
  no behaviour to pin, so ``expect`` is then required.
- ``relevant_doc_ids``: the documents of the trace's citations, only when the trace answered
  and ``expect`` is ``answer`` (a refused or wrong answer cites nothing worth keeping).
- ``reference_answers``: only what the user gives (``--reference``); never the trace's own
  output, which would grade the system against itself. Not allowed with ``cannot_answer``.
- ``tags``: ``from-trace`` plus the user's; the id defaults to ``trace-<first 16 digits>``.

``case_from_feedback``: a trace a user rated negatively (``down``, 1 or 2; issue 12) becomes a
case ``feedback-<first 16 digits>`` tagged ``from-feedback`` and ``rating-<rating>``. The user
said the behaviour was wrong, so it is not pinned: the default ``expect`` is ``answer`` (a
refusal rated down should have answered; an answer rated down should have answered better),
and no relevant documents are taken from the citations of an answer the user rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ragkeel.errors import DatasetError
from ragkeel.evaluation.cases import EvalCase, Expect
from ragkeel.observability.feedback import Feedback
from ragkeel.observability.trace import Trace

FROM_TRACE_TAG = "from-trace"
FROM_FEEDBACK_TAG = "from-feedback"
_ID_DIGITS = 16


def observed_expect(trace: Trace) -> Expect | None:
    """What the trace did: ``answer``, ``cannot_answer``, or ``None`` for an error."""
    if trace.outcome == "error":
        return None
    return "cannot_answer" if trace.outcome == "cannot_answer" else "answer"


def case_from_trace(
    trace: Trace,
    *,
    expect: Expect | None = None,
    case_id: str | None = None,
    tags: Sequence[str] = (),
    references: Sequence[str] = (),
) -> EvalCase:
    observed = observed_expect(trace)
    chosen = expect or observed
    if chosen is None:
        raise DatasetError(
            f"trace {trace.id} ended in an error ({trace.error_code}); there is no behaviour "
            "to pin",
            hint="say what the right behaviour is with --expect answer|cannot_answer",
        )
    if chosen == "cannot_answer" and references:
        raise DatasetError(
            "a cannot_answer case has no reference answers",
            hint="drop --reference, or use --expect answer",
        )
    relevant: tuple[str, ...] = ()
    if chosen == "answer" and observed == "answer":
        relevant = tuple(dict.fromkeys(c.document_id for c in trace.citations))
    return EvalCase(
        id=case_id or f"trace-{trace.id[:_ID_DIGITS]}",
        question=trace.question,
        reference_answers=tuple(r.strip() for r in references if r.strip()),
        relevant_doc_ids=relevant,
        expect=chosen,
        tags=tuple(dict.fromkeys((FROM_TRACE_TAG, *tags))),
    )


def case_from_feedback(
    trace: Trace,
    feedback: Feedback,
    *,
    expect: Expect | None = None,
    tags: Sequence[str] = (),
) -> EvalCase:
    """The regression case of a negatively rated trace (see the module docstring)."""
    if not feedback.negative or feedback.trace_id != trace.id:
        raise DatasetError(
            f"feedback {feedback.rating!r} on {feedback.trace_id} is not a negative rating of "
            f"trace {trace.id}",
            hint="only down, 1 and 2 ratings become regression cases",
        )
    chosen = expect or "answer"
    case = case_from_trace(
        trace,
        expect=chosen,
        case_id=f"feedback-{trace.id[:_ID_DIGITS]}",
        tags=(FROM_FEEDBACK_TAG, f"rating-{feedback.rating}", *tags),
    )
    return replace(case, relevant_doc_ids=())

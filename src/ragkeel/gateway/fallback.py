"""``FallbackChatModel``: an ordered chain of deployments (rungs); the first that answers wins.

* Rung ``i + 1`` is tried when rung ``i`` raises any ``ChatModelError`` except
  ``DeadlineExceededError``, ``BudgetExceededError`` and ``RateLimitedError``: those end the
  request, since another rung would have no more time, money or admission than this one had.
* When every rung fails, the last rung's error is raised; each rung's error carries the previous
  rung's as its ``__context__``, so the trace shows the whole chain. (The answer flow then
  degrades to the extractive answer and "cannot answer"; that is not this module's job.)
* Every rung but the last gets the request with ``next_rung`` set to the next rung's name (the
  last rung keeps the caller's, for a chain inside a chain): the retry loop of a rung with
  somewhere to go does not spend another attempt timeout on a deployment that did not answer
  (see ``retry.py``).
* The answering rung is named in the call log's ``served_by`` / ``rung`` (0-based), in
  ``ChatResponse.model`` and in the last ``ChatChunk.model``; a rung is named by its
  ``deployment`` attribute when it has one (the policy wrappers do), else by its ``name``. Every
  fall-through is a ``fallback`` decision in the log, with the error code as the reason.
* Mid-stream failure: a stream that breaks after delivering text never ends as a silent
  success. With ``continue_interrupted`` and a rung left, the next rung gets the same messages
  plus the partial answer as an ``assistant`` message and a ``user`` message asking it to go on
  exactly where the text stops (``CONTINUE_PROMPT``), and its text streams on after what the
  consumer already has (``max_tokens`` shrinks by the partial's token count). Otherwise, or when
  no rung manages to continue, ``StreamInterruptedError(partial=everything delivered)`` is
  raised, chained to the cause. Once text has been delivered every failure ends that way, even a
  deadline, so the consumer always learns the answer is incomplete and what it has.
* ``usage`` of the last chunk sums the attempts that produced text; an attempt that broke off
  has no reported usage, so it is estimated with that rung's ``count_tokens`` (prompt + partial).
* A rung's stream is read to its end before its last chunk is passed on, so the wrappers inside
  the rung (breaker, metering) see it finish even when the consumer stops at the last chunk.
  Closing the stream early closes the running rung's stream (cancelling its generation).
  ``count_tokens`` uses the first rung. The chain owns no connection: the stack closes the
  provider clients it made (``GatewayStack.close``).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace

from ragkeel.errors import (
    BudgetExceededError,
    ChatModelError,
    DeadlineExceededError,
    RateLimitedError,
    StreamInterruptedError,
)
from ragkeel.gateway.base import (
    ChatChunk,
    ChatMessage,
    ChatModel,
    ChatRequest,
    ChatResponse,
    Usage,
)
from ragkeel.gateway.calllog import current_log

CONTINUE_PROMPT = (
    "Your answer above was cut off. Continue it exactly where it stops, in the same style and "
    "language: do not repeat any of it, do not add a preamble, start with the next character."
)
_MAX_WRAPPERS = 16  # deployment_name looks this deep through ``inner`` (no cycles possible)
_STOPS: tuple[type[ChatModelError], ...] = (
    DeadlineExceededError,
    BudgetExceededError,
    RateLimitedError,
)


def deployment_name(model: ChatModel) -> str:
    """How the chain names a rung: the ``deployment`` of the outermost wrapper that has one,
    looking through wrappers' ``inner`` (retry has none, the breaker and metering have one),
    else the model ``name``."""
    current: object = model
    for _ in range(_MAX_WRAPPERS):
        deployment = getattr(current, "deployment", None)
        if isinstance(deployment, str) and deployment:
            return deployment
        current = getattr(current, "inner", None)
        if current is None:
            break
    return model.name


@dataclass(slots=True)
class _Progress:
    """What a stream has delivered so far, across rungs."""

    text: str = ""
    usage: Usage = field(default_factory=Usage)


class FallbackChatModel:
    """``ChatModel`` over an ordered list of deployments; thread-safe if its rungs are."""

    def __init__(
        self,
        deployments: Sequence[ChatModel],
        *,
        continue_interrupted: bool = True,
        name: str | None = None,
    ) -> None:
        if not deployments:
            raise ValueError("a fallback chain needs at least one deployment")
        self._rungs = tuple(deployments)
        self._names = tuple(deployment_name(m) for m in self._rungs)
        self.continue_interrupted = continue_interrupted
        self._name = name or self._rungs[0].name

    @property
    def name(self) -> str:
        return self._name

    @property
    def deployments(self) -> tuple[str, ...]:
        return self._names

    def count_tokens(self, text: str) -> int:
        return self._rungs[0].count_tokens(text)

    # -- complete -------------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> ChatResponse:
        return self._complete_from(0, request)

    def _complete_from(self, rung: int, request: ChatRequest) -> ChatResponse:
        try:
            response = self._rungs[rung].complete(self._for_rung(rung, request))
        except ChatModelError as exc:
            self._fall_through(rung, exc)
            return self._complete_from(rung + 1, request)  # inside except: chains the errors
        self._served(rung)
        return replace(response, model=self._names[rung])

    def _for_rung(self, rung: int, request: ChatRequest) -> ChatRequest:
        """``request`` as rung ``rung`` gets it: naming the rung that comes after it."""
        if rung + 1 < len(self._rungs):
            return replace(request, next_rung=self._names[rung + 1])
        return request

    def _fall_through(self, rung: int, exc: ChatModelError) -> None:
        """Log why ``rung`` failed; re-raise ``exc`` when it ends the request or no rung is left."""
        name, code = self._names[rung], exc.code
        if isinstance(exc, _STOPS):
            self._decide(f"{name} failed ({code}); no fallback: it ends the request")
            raise exc
        if rung + 1 >= len(self._rungs):
            self._decide(f"{name} failed ({code}); no rung left")
            raise exc
        self._decide(f"{name} failed ({code}); falling back to {self._names[rung + 1]}")

    def _served(self, rung: int) -> None:
        if (log := current_log()) is not None:
            log.served_by = self._names[rung]
            log.rung = rung
        self._decide(f"rung {rung} {self._names[rung]} answered")

    @staticmethod
    def _decide(reason: str) -> None:
        if (log := current_log()) is not None:
            log.decide("fallback", reason)

    # -- stream ---------------------------------------------------------------------------

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        """Nothing is sent until the iterator is first advanced."""
        return self._stream_from(0, request, _Progress())

    def _stream_from(
        self, rung: int, request: ChatRequest, progress: _Progress
    ) -> Generator[ChatChunk, None, None]:
        model, name = self._rungs[rung], self._names[rung]
        sent = request if not progress.text else self._continuation(request, progress.text, model)
        sent = self._for_rung(rung, sent)
        got: list[str] = []
        final: ChatChunk | None = None
        chunks = model.stream(sent)
        try:
            for chunk in chunks:  # to the end, so the rung's wrappers see it finish
                if chunk.finish_reason is not None:
                    final = chunk  # held back until the rung's stream is exhausted
                elif final is None:
                    got.append(chunk.text_delta)
                    yield chunk
            # the protocol promises a last chunk with finish_reason; close the answer anyway
            final = final or ChatChunk("", "stop")
            text = "".join(got) + final.text_delta
            usage = progress.usage + (final.usage or _estimate(model, sent, text))
            self._served(rung)
            yield replace(final, usage=usage, model=name)
        except ChatModelError as exc:
            text = "".join(got)
            progress.text += text
            if text:
                progress.usage = progress.usage + _estimate(model, sent, text)
            self._after_stream_error(rung, exc, progress, len(text))
            yield from self._stream_from(rung + 1, request, progress)  # chains the errors
        finally:
            chunks.close()

    def _after_stream_error(
        self,
        rung: int,
        exc: ChatModelError,
        progress: _Progress,
        chars: int,
    ) -> None:
        """Return to go on with rung + 1; raise to end the stream."""
        if not progress.text:
            self._fall_through(rung, exc)
            return
        name = self._names[rung]
        what = f"{name} interrupted after {chars} chars" if chars else f"{name} failed"
        left = rung + 1 < len(self._rungs)
        if self.continue_interrupted and left and not isinstance(exc, _STOPS):
            self._decide(f"{what} ({exc.code}); continued on {self._names[rung + 1]}")
            return
        why = "continuation is off" if left else "no rung left"
        if isinstance(exc, _STOPS):
            why = "it ends the request"
        self._decide(f"{what} ({exc.code}); answer incomplete: {why}")
        raise StreamInterruptedError(
            f"the answer broke off after {len(progress.text)} chars ({name}: {exc.code}); {why}",
            model=name,
            partial=progress.text,
        ) from exc

    @staticmethod
    def _continuation(request: ChatRequest, partial: str, model: ChatModel) -> ChatRequest:
        messages = (
            *request.messages,
            ChatMessage("assistant", partial),
            ChatMessage("user", CONTINUE_PROMPT),
        )
        max_tokens = max(1, request.max_tokens - model.count_tokens(partial))
        return replace(request, messages=messages, max_tokens=max_tokens)


def _estimate(model: ChatModel, request: ChatRequest, text: str) -> Usage:
    prompt = sum(model.count_tokens(m.content) for m in request.messages)
    return Usage(prompt, model.count_tokens(text))

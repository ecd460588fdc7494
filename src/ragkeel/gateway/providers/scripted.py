"""``ScriptedChatModel``: a deterministic chat model for tests and demos (like pydantic-ai's
``TestModel``). It ships in the package so every layer above the gateway is tested against the
real protocol, not a mock.

Each call takes the next item of the script (the last item repeats once the list runs out), or
asks a function of the request. An item is either the reply text or a ``ScriptedFailure`` that
raises a gateway error before the first token or after some tokens. Replies stream piece by
piece (a word or a punctuation mark with its leading whitespace), honour ``max_tokens`` and
``stop``, optionally sleep ``token_delay_s`` per piece, and raise ``ModelTimeoutError`` when the
request's ``timeout_s`` runs out. Every request is recorded in ``requests``; streams closed
before their end (a cancelled generation) are counted in ``cancelled``.

``serialised=True`` behaves like one llama.cpp context under a careless provider: one stream at
a time holds a (non-reentrant) lock from its first chunk until it is closed or ends, and
``count_tokens`` takes the same lock. Any wrapper that counts tokens while a stream it opened is
still open then deadlocks, as the local model once did (issue 9): tests of the layers above
use it to prove they never do.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from ragkeel.errors import ChatModelError, ModelTimeoutError, ModelUnavailableError
from ragkeel.gateway.base import ChatChunk, ChatRequest, ChatResponse, FinishReason, Usage
from ragkeel.tokens import RegexTokenCounter

MAX_TOKEN_DELAY_S = 0.5  # a fake that sleeps longer than this per token is a slow test
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])", re.UNICODE)


@dataclass(frozen=True, slots=True)
class ScriptedFailure:
    """Raise ``kind``'s gateway error after ``after_tokens`` pieces (0: before the first)."""

    kind: Literal["timeout", "unavailable", "error"]
    after_tokens: int = 0
    partial: str = ""  # the text streamed before failing (``after_tokens`` pieces of it)
    message: str = ""


Reply = str | ScriptedFailure
Script = Sequence[Reply] | Callable[[ChatRequest], Reply]


class ScriptedChatModel:
    """``ChatModel`` whose replies come from a script; thread-safe."""

    def __init__(
        self,
        script: Script = ("This is a scripted answer.",),
        *,
        name: str = "scripted",
        token_delay_s: float = 0.0,
        serialised: bool = False,
    ) -> None:
        if not 0.0 <= token_delay_s <= MAX_TOKEN_DELAY_S:
            raise ValueError(f"token_delay_s must be within [0, {MAX_TOKEN_DELAY_S}]")
        if not callable(script) and not script:
            raise ValueError("the script needs at least one reply")
        self._script = script
        self._name = name
        self.token_delay_s = token_delay_s
        self.requests: list[ChatRequest] = []
        self.cancelled = 0  # streams closed before their end
        self._counter = RegexTokenCounter()
        self._lock = threading.Lock()
        self._generation = threading.Lock() if serialised else None

    @property
    def name(self) -> str:
        return self._name

    @property
    def calls(self) -> int:
        return len(self.requests)

    def count_tokens(self, text: str) -> int:
        if self._generation is None:
            return self._counter.count(text)
        with self._generation:
            return self._counter.count(text)

    def complete(self, request: ChatRequest) -> ChatResponse:
        parts: list[str] = []
        finish: FinishReason = "stop"
        usage = Usage()
        for chunk in self.stream(request):
            parts.append(chunk.text_delta)
            finish = chunk.finish_reason or finish
            usage = chunk.usage or usage
        return ChatResponse("".join(parts), usage, self._name, finish)

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        """Records the request now; the reply (or failure) happens as the iterator is consumed."""
        with self._lock:
            index = len(self.requests)
            self.requests.append(request)
        reply = self._script(request) if callable(self._script) else self._nth(index)
        return self._play(request, reply)

    def _nth(self, index: int) -> Reply:
        assert not callable(self._script)
        return self._script[min(index, len(self._script) - 1)]

    def _play(self, request: ChatRequest, reply: Reply) -> Generator[ChatChunk, None, None]:
        if self._generation is not None:
            self._generation.acquire()
        try:
            yield from self._chunks(request, reply)
        except GeneratorExit:  # the consumer closed the stream early: generation is cancelled
            with self._lock:
                self.cancelled += 1
            raise
        finally:
            if self._generation is not None:
                self._generation.release()

    def _chunks(self, request: ChatRequest, reply: Reply) -> Iterator[ChatChunk]:
        started = time.monotonic()
        prompt_tokens = sum(self._counter.count(m.content) for m in request.messages)
        text, finish = _apply_stop(
            reply.partial if isinstance(reply, ScriptedFailure) else reply, request.stop
        )
        pieces = split_pieces(text)
        if isinstance(reply, ScriptedFailure):
            pieces = pieces[: reply.after_tokens]
        elif len(pieces) > request.max_tokens:
            pieces, finish = pieces[: request.max_tokens], "length"
        for i, piece in enumerate(pieces):
            self._wait(request, started)
            last = i == len(pieces) - 1 and not isinstance(reply, ScriptedFailure)
            yield ChatChunk(
                piece,
                finish if last else None,
                Usage(prompt_tokens, len(pieces)) if last else None,
            )
        if isinstance(reply, ScriptedFailure):
            raise self._failure(reply, request)
        if not pieces:
            yield ChatChunk("", finish, Usage(prompt_tokens, 0))

    def _wait(self, request: ChatRequest, started: float) -> None:
        if self.token_delay_s:
            time.sleep(self.token_delay_s)
        if request.timeout_s is not None and time.monotonic() - started > request.timeout_s:
            raise ModelTimeoutError(
                f"{self._name} did not finish within {request.timeout_s:g} s",
                model=self._name,
                timeout_s=request.timeout_s,
            )

    def _failure(self, failure: ScriptedFailure, request: ChatRequest) -> ChatModelError:
        message = failure.message or f"scripted {failure.kind} from {self._name}"
        if failure.kind == "timeout":
            return ModelTimeoutError(message, model=self._name, timeout_s=request.timeout_s)
        if failure.kind == "unavailable":
            return ModelUnavailableError(message, model=self._name)
        return ChatModelError(message, model=self._name)


def split_pieces(text: str) -> list[str]:
    """Cut ``text`` into stream pieces that join back to exactly ``text``."""
    pieces = _PIECE.findall(text)
    rest = text[sum(map(len, pieces)) :]
    if rest:
        if pieces:
            pieces[-1] += rest
        else:
            pieces.append(rest)
    return pieces


def _apply_stop(text: str, stop: Sequence[str]) -> tuple[str, FinishReason]:
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(cuts)], "stop") if cuts else (text, "stop")

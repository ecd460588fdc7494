"""``CallLog``: what the gateway did for one request, for the response, the trace and the ledger.

Every policy appends to the call log being recorded instead of returning side information: each
attempt at a deployment (outcome, error code, status, latency, usage and cost; written by
``MeteredChatModel``, the innermost wrapper) and each decision with its reason (router: "cheap:
confident single-fact question"; budget: "max_tokens 256 -> 120 to fit max_cost"; fallback:
"rung 2 local answered"), and how a local model read the prompt (``PromptRead``: the
milliseconds and tokens of its prompt evaluation, the tokens its KV cache already held; issue
14). Retries log a decision each (with the backoff slept). One request is
handled by one thread at a time, but a lock keeps concurrent appends (a hedged or parallel
policy) safe.

The log is context-local, not a field of the (frozen) ``ChatRequest``: the caller records with
``with recording(log): model.complete(request)``, and the policies append to ``current_log()``
(``None``: nobody records, nothing is logged). A stream runs its code at each ``next`` and at
``close``, in the context of whoever advances it: advance and close it inside the ``with``
block, or wrap it in ``recorded(stream, log)``, which records each step into ``log`` wherever it
is advanced (the answer flow does; a generator must not keep a ``with recording`` open across a
``yield``). A policy that records when its stream ends (metering, breaker, budget) keeps the
log that was current when the stream started, so a stream closed late still records into it.
Work handed to another thread must carry the context (``contextvars.copy_context().run``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

from ragkeel.gateway.base import ChatChunk, ChatStream, Usage

Outcome = Literal["ok", "error", "rejected", "interrupted"]


@dataclass(frozen=True, slots=True)
class Attempt:
    deployment: str
    outcome: Outcome  # rejected: refused without a call (open breaker, cool-down, budget)
    latency_ms: float
    code: str | None = None  # the error's stable code when not ok
    status: int | None = None  # HTTP status when the provider sent one
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0


@dataclass(frozen=True, slots=True)
class PromptRead:
    """How a model read a prompt (issue 14): ``ms`` evaluating ``tokens`` prompt tokens, after
    taking ``reused`` more from its KV cache (the prefix it shared with the previous prompt)."""

    ms: float
    tokens: int
    reused: int

    def __add__(self, other: PromptRead) -> PromptRead:
        return PromptRead(
            self.ms + other.ms, self.tokens + other.tokens, self.reused + other.reused
        )

    def to_dict(self) -> dict[str, float | int]:
        return {"ms": round(self.ms, 3), "tokens": self.tokens, "reused_tokens": self.reused}


@dataclass(frozen=True, slots=True)
class Decision:
    policy: str  # "router", "budget", "fallback", "retry", "breaker", "limits"
    reason: str


@dataclass(slots=True)
class CallLog:
    attempts: list[Attempt] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    served_by: str | None = None  # the deployment whose answer was returned
    rung: int | None = None  # its position in the fallback chain (0 = first choice)
    queue_ms: float = 0.0  # time spent waiting for a turn on a serialised model (local)
    prompt: PromptRead | None = None  # how the (local) model read the prompt, when it says
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def attempt(self, attempt: Attempt) -> None:
        with self._lock:
            self.attempts.append(attempt)

    def decide(self, policy: str, reason: str) -> None:
        with self._lock:
            self.decisions.append(Decision(policy, reason))

    def read_prompt(self, read: PromptRead) -> None:
        """The model read the prompt as ``read`` says (added up over attempts)."""
        with self._lock:
            self.prompt = read if self.prompt is None else self.prompt + read

    def queued(self, ms: float) -> None:
        """A model made this request wait ``ms`` for its turn (added up over attempts)."""
        with self._lock:
            self.queue_ms += ms

    @property
    def cost(self) -> float:
        return sum(a.cost for a in self.attempts)

    @property
    def usage(self) -> Usage:
        total = Usage()
        for a in self.attempts:
            total = total + a.usage
        return total

    def to_dict(self) -> dict[str, object]:
        return {
            "served_by": self.served_by,
            "rung": self.rung,
            "cost": self.cost,
            "queue_ms": round(self.queue_ms, 3),
            **({"prompt_eval": self.prompt.to_dict()} if self.prompt else {}),
            "attempts": [
                {
                    "deployment": a.deployment,
                    "outcome": a.outcome,
                    "latency_ms": round(a.latency_ms, 3),
                    "code": a.code,
                    "status": a.status,
                    "prompt_tokens": a.usage.prompt_tokens,
                    "completion_tokens": a.usage.completion_tokens,
                    "cost": a.cost,
                }
                for a in self.attempts
            ],
            "decisions": [{"policy": d.policy, "reason": d.reason} for d in self.decisions],
        }


_CURRENT: ContextVar[CallLog | None] = ContextVar("ragkeel_call_log", default=None)


def current_log() -> CallLog | None:
    """The call log being recorded in this context, or ``None``."""
    return _CURRENT.get()


def recording(log: CallLog) -> AbstractContextManager[CallLog]:
    """Record what the gateway does inside the block into ``log``."""
    return _Recording(log)


class _Recording(AbstractContextManager[CallLog]):
    """``recording``'s block (a class, not a generator: it is entered once per model call)."""

    __slots__ = ("_log", "_token")

    def __init__(self, log: CallLog) -> None:
        self._log = log

    def __enter__(self) -> CallLog:
        self._token = _CURRENT.set(self._log)
        return self._log

    def __exit__(self, *exc: object) -> None:
        _CURRENT.reset(self._token)


def recorded(chunks: ChatStream, log: CallLog) -> ChatStream:
    """``chunks`` with every step, and its close, run while recording into ``log``."""
    return _Recorded(chunks, log)


class _Recorded:
    __slots__ = ("_chunks", "_log")

    def __init__(self, chunks: ChatStream, log: CallLog) -> None:
        self._chunks, self._log = chunks, log

    def __iter__(self) -> Iterator[ChatChunk]:
        return self

    def __next__(self) -> ChatChunk:  # once per chunk: the ContextVar directly, no generator
        token = _CURRENT.set(self._log)
        try:
            return next(self._chunks)
        finally:
            _CURRENT.reset(token)

    def close(self) -> None:
        with recording(self._log):
            self._chunks.close()

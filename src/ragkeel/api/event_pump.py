"""``EventPump``: runs a synchronous generator (``Answerer.stream``) in a thread of its own and
hands its items to asyncio, so the event loop never blocks on retrieval or the model.

Cancelling (``cancel()``, or leaving ``items()`` early: a client disconnect, the server
shutting down) sets a flag the thread checks after every item; the thread then *closes the
generator itself* (a running generator cannot be closed from another thread). Closing runs
the generator's ``finally`` blocks, which close the model stream: generation stops after the
token in flight. The thread is the generator's only caller, so a provider that holds a lock
across its stream (``LocalChatModel``) takes and releases it in one thread. The thread runs in a
copy of its creator's ``contextvars`` context, so the request's trace id
(``observability/context.py``) follows the answer into it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import AsyncGenerator, Generator
from typing import Generic, Literal, TypeVar, cast

T = TypeVar("T")
_Message = tuple[Literal["item", "error", "end"], object]


class EventPump(Generic[T]):
    def __init__(self, source: Generator[T, None, None], *, name: str = "ragkeel-pump") -> None:
        self._source = source
        self._stop = threading.Event()
        context = contextvars.copy_context()  # the request's context (its trace id)
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name=name, daemon=True
        )
        self._queue: asyncio.Queue[_Message] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started_at: float | None = None  # time.monotonic() when the thread started

    def running_s(self, now: float) -> float | None:
        """How long the thread has been running at ``now`` (None: not started, or ended)."""
        if self.started_at is None or self.finished:
            return None
        return now - self.started_at

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    @property
    def finished(self) -> bool:
        """The thread ran and has ended (the generator is closed)."""
        return self._thread.ident is not None and not self._thread.is_alive()

    def cancel(self, error: BaseException | None = None) -> None:
        """Stop after the item being produced now; safe from any thread, idempotent. With
        ``error``, the consumer gets it at once (after the items already handed over), even
        while the thread is stuck in a call that never returns: the thread is then abandoned
        (it is a daemon, and closes the generator whenever the call does return)."""
        self._stop.set()
        if error is not None:
            self._post(("error", error))

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to finish (the generator closed); True when it has."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    async def items(self) -> AsyncGenerator[T, None]:
        """The generator's items; its exception is raised here. Leaving early cancels."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self.started_at = time.monotonic()
        self._thread.start()
        try:
            while True:
                kind, value = await self._queue.get()
                if kind == "end":
                    return
                if kind == "error":
                    assert isinstance(value, BaseException)
                    raise value
                yield cast(T, value)  # an "item" message carries a T
        finally:
            self.cancel()

    def _run(self) -> None:
        try:
            for item in self._source:
                if self._stop.is_set():
                    break
                self._post(("item", item))
                if self._stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, never lost in this thread
            self._post(("error", exc))
        finally:
            try:
                self._source.close()  # GeneratorExit at its current yield: the model stream closes
            except BaseException as exc:
                self._post(("error", exc))
            self._post(("end", None))

    def _post(self, message: _Message) -> None:
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:  # pragma: no cover - items() sets both first
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is listening any more
            loop.call_soon_threadsafe(queue.put_nowait, message)

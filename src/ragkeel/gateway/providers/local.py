"""``LocalChatModel``: a GGUF model run in-process by llama.cpp (``llama-cpp-python``).

* The model file is checked before it is loaded (``ragkeel.models.gguf.verify_file``): a
  pinned model by its sha256, nothing else is ever loaded in its place; the user's own file
  (``generation.local.model_path``, issue 15) for existence and the GGUF header, and by its
  sha256 when one is pinned. Loading is lazy (first call) and happens once per process, under
  its own lock.
* The chat template is the one stored in the GGUF: given no ``chat_format``, llama-cpp-python
  0.3.36 (``Llama.__init__``) reads the file's ``tokenizer.chat_template`` metadata and uses its
  built-in formatter when the template is exactly the ChatML, Mistral or Llama-3 one, else the
  file's own Jinja template (``chat_format`` "chat_template.default"). A file with no template
  gets the "llama-2" format — most likely not the model's: that is logged as a warning, and
  ``chat_format`` says which one was chosen. Token counts come from the model's own
  ``tokenize``.
* llama.cpp reuses the KV cache for the longest common prefix with the previous call, so the
  fixed system prompt is evaluated once, not per question. How each prompt was read — the
  milliseconds and tokens of its prompt evaluation (llama.cpp's own perf counters), and the
  prompt tokens taken from the KV cache instead — goes to the call log being recorded
  (``PromptRead``; the answer's ``prompt_eval`` stage, issue 14). With ``warm_prefix`` (the
  answer prompt's fixed messages) that prefix is read at load, before the model is handed out,
  and put back before a generation when another prompt overwrote it (``local_prefix.py``).
* One ``Llama`` context is not thread-safe: generations take turns through a
  ``GenerationQueue`` (shared by the local models of a process: a cheap tier beside the default
  model takes turns with it, as both would share the same cores) — one generates, at most ``max_queue`` wait (more: ``ModelBusyError`` at
  once, with ``Retry-After``), and none waits past the request's ``deadline`` (or its
  ``timeout_s``): ``DeadlineExceededError``. The time spent waiting is reported to the call
  log being recorded (``calllog.current_log()``, ``queue_ms``) and the generation slot is held from the first token to the close
  of the stream.
* ``count_tokens`` does NOT take the generation slot: tokenizing reads only the vocabulary, which
  is immutable once loaded. (It once took the same lock as generation: a cleanup path that
  counted tokens while its stream was still open deadlocked the answer thread, issue 9.)
* llama.cpp has no timeout: the stream checks the clock between tokens, and an abort callback
  stops a decode in progress (a long prompt is read in decodes of 512 tokens), with
  ``ModelTimeoutError`` (or ``DeadlineExceededError`` at the request deadline). Closing the
  iterator stops generation after the current token and frees the slot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

from ragkeel.clock import SYSTEM_CLOCK, Clock
from ragkeel.errors import (
    ChatModelError,
    DeadlineExceededError,
    ModelBusyError,
    ModelTimeoutError,
    ModelUnavailableError,
)
from ragkeel.gateway.base import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    FinishReason,
    Usage,
)
from ragkeel.gateway.calllog import PromptRead, current_log
from ragkeel.gateway.providers.local_prefix import WarmPrefix
from ragkeel.models.gguf import GgufFile, verify_file

log = logging.getLogger(__name__)
_INSTALL_HINT = (
    "pip install 'ragkeel[local]' (llama-cpp-python==0.3.36, compiled from source in 6-11 "
    "minutes), or in a checkout `make setup`, which builds it once per machine"
)
DEFAULT_MAX_QUEUE = 2


class GenerationQueue:
    """One generation at a time, at most ``max_queue`` callers waiting for their turn (FIFO is
    not promised: ``threading.Condition`` wakes any waiter). Thread-safe. ``snapshot`` tells
    ``/readyz`` how long the slot has been held, so a slot that is never given back is seen."""

    def __init__(self, max_queue: int = DEFAULT_MAX_QUEUE, *, clock: Clock = SYSTEM_CLOCK) -> None:
        if max_queue < 0:
            raise ValueError(f"max_queue must not be negative, got {max_queue}")
        self.max_queue = max_queue
        self._clock = clock
        self._cond = threading.Condition()
        self._held_since: float | None = None
        self._waiting = 0
        self.refused = 0

    def acquire(self, model: str, *, wait_s: float | None) -> float:
        """Take the slot, waiting at most ``wait_s`` (None: no bound); the seconds waited.
        ``ModelBusyError`` when ``max_queue`` callers already wait, ``DeadlineExceededError``
        when the wait runs out."""
        with self._cond:
            started = self._clock.now()
            if self._held_since is not None:
                if self._waiting >= self.max_queue:
                    self.refused += 1
                    raise ModelBusyError(
                        f"{model} is busy: one answer is generating and {self._waiting} "
                        f"wait{'s' if self._waiting == 1 else ''} (generation.local.max_queue "
                        f"{self.max_queue})",
                        model=model,
                    )
                self._waiting += 1
                try:
                    free = self._cond.wait_for(lambda: self._held_since is None, wait_s)
                finally:
                    self._waiting -= 1
                if not free:
                    raise DeadlineExceededError(
                        f"waited {self._clock.now() - started:.1f} s for {model} "
                        "(another answer was generating) and the request's deadline ran out",
                        model=model,
                        timeout_s=wait_s,
                        hint="retry later, or raise gateway.request_deadline_s",
                    )
            self._held_since = self._clock.now()
            return self._held_since - started

    def release(self) -> None:
        with self._cond:
            self._held_since = None
            self._cond.notify()

    def snapshot(self) -> dict[str, Any]:
        """``{"generating", "held_s", "waiting", "max_queue", "refused"}`` for ``/readyz``."""
        with self._cond:
            since = self._held_since
            held = None if since is None else round(self._clock.now() - since, 3)
            return {
                "generating": since is not None,
                "held_s": held,
                "waiting": self._waiting,
                "max_queue": self.max_queue,
                "refused": self.refused,
            }


class LocalChatModel:
    def __init__(
        self,
        file: GgufFile,
        *,
        n_ctx: int = 4096,
        threads: int = 0,
        default_timeout_s: float = 120.0,
        max_queue: int = DEFAULT_MAX_QUEUE,
        clock: Clock = SYSTEM_CLOCK,
        warm_prefix: Callable[[], Sequence[ChatMessage]] | None = None,
        queue: GenerationQueue | None = None,
    ) -> None:
        """``file``: the GGUF file to load (``models.gguf.pinned_file`` or ``own_file``); its
        ``name`` is the model's. ``warm_prefix``: the messages whose prompt prefix to read at
        load (called then, so it may name a prompt built after the model: the answer template
        with its canary).
        ``queue``: a generation slot shared with other local models (they share the cores;
        default: this model's own, of ``max_queue``)."""
        self.file = file
        self.n_ctx = n_ctx
        self.threads = threads
        self.default_timeout_s = default_timeout_s
        self.queue = queue if queue is not None else GenerationQueue(max_queue, clock=clock)
        self._clock = clock
        self._llm: Any = None
        self._abort_at: float | None = None  # llama.cpp aborts a decode past this clock time
        self._abort_callback: Any = None  # the ctypes callback (kept alive while the model is)
        self._load_lock = threading.Lock()  # loading only; never held while generating
        self._warm_prefix = warm_prefix
        self.prefix: WarmPrefix | None = None  # the warmed prefix, once loaded
        self.chat_format: str | None = None  # llama-cpp-python's choice, once loaded
        self.load_seconds: float | None = None

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def load(self) -> None:
        """Verify and load the model now (otherwise the first call does it)."""
        self._ensure_loaded()

    def _ensure_loaded(self) -> Any:
        llm = self._llm
        if llm is not None:
            return llm
        with self._load_lock:
            return self._llm if self._llm is not None else self._load()

    def _load(self) -> Any:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelUnavailableError(
                "llama-cpp-python is not installed", model=self.name, hint=_INSTALL_HINT
            ) from exc
        path = verify_file(self.file)  # ModelError / ModelChecksumError
        started = time.perf_counter()
        try:
            llm = Llama(
                model_path=str(path),
                n_ctx=self.n_ctx,
                n_threads=self.threads or None,
                verbose=False,
            )
        except Exception as exc:  # llama.cpp raises ValueError/RuntimeError on a bad file
            raise ModelUnavailableError(f"cannot load {path}: {exc}", model=self.name) from exc
        self._watch_decodes(llm)
        self.chat_format = str(llm.chat_format)
        if "tokenizer.chat_template" not in llm.metadata:
            log.warning(
                "%s has no chat template in its metadata: llama-cpp-python formats prompts as "
                "%s, which may not be the model's own format",
                path,
                self.chat_format,
            )
        if self._warm_prefix is not None:  # before anyone else can use the context
            self.prefix = WarmPrefix(self._warm_prefix())
            self.prefix.warm(llm)
        self._llm = llm
        self.load_seconds = time.perf_counter() - started
        return llm

    def _watch_decodes(self, llm: Any) -> None:
        """Let a generation's time limit stop llama.cpp *inside* a decode too: reading a long
        prompt is one decode per 512 tokens and took 3-13 s against a 0.2 s timeout before
        (found by the chat-model contract suite). ggml polls the callback while it computes."""
        import llama_cpp

        def should_abort(_data: Any) -> bool:
            at = self._abort_at
            return at is not None and self._clock.now() > at

        self._abort_callback = llama_cpp.ggml_abort_callback(should_abort)
        llama_cpp.llama_set_abort_callback(llm._ctx.ctx, self._abort_callback, None)

    def count_tokens(self, text: str) -> int:
        """The model's own token count; never waits for a generation (see the module doc)."""
        llm = self._ensure_loaded()
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def complete(self, request: ChatRequest) -> ChatResponse:
        parts: list[str] = []
        usage, finish = Usage(), "stop"
        for chunk in self.stream(request):
            parts.append(chunk.text_delta)
            if chunk.finish_reason is not None:
                finish, usage = chunk.finish_reason, chunk.usage or usage
        return ChatResponse("".join(parts), usage, self.name, finish)  # type: ignore[arg-type]

    def stream(self, request: ChatRequest) -> Generator[ChatChunk, None, None]:
        llm = self._ensure_loaded()  # a missing model fails here, before any queueing
        timeout = request.timeout_s or self.default_timeout_s
        queued = self._clock.now()
        try:
            self.queue.acquire(self.name, wait_s=self._wait_bound(request, timeout))
        finally:  # a wait that ran out of deadline is reported too
            if (log := current_log()) is not None:
                log.queued((self._clock.now() - queued) * 1000)
        try:
            yield from self._generate(llm, request, self._generation_bound(request, timeout))
        finally:
            self.queue.release()

    def _wait_bound(self, request: ChatRequest, timeout: float) -> float:
        """How long a request may wait for its turn: until its deadline, else its timeout."""
        if request.deadline is not None:
            return max(request.deadline - self._clock.now(), 0.0)
        return timeout

    def _generation_bound(self, request: ChatRequest, timeout: float) -> tuple[float, bool]:
        """(seconds the generation may take, whether that is the request's deadline)."""
        if request.deadline is not None and request.deadline - self._clock.now() < timeout:
            return max(request.deadline - self._clock.now(), 0.0), True
        return timeout, False

    def _generate(
        self, llm: Any, request: ChatRequest, bound: tuple[float, bool]
    ) -> Generator[ChatChunk, None, None]:
        limit, is_deadline = bound
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        started = self._clock.now()
        self._abort_at = started + limit
        if self.prefix is not None:
            self.prefix.restore(llm)
        read_before = _prompt_counters(llm)
        try:
            pieces = llm.create_chat_completion(
                messages=messages,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                stop=list(request.stop) or None,
                stream=True,
                response_format=_response_format(request),
            )
            completion_tokens = prompt_tokens = 0
            finish: FinishReason = "stop"
            try:
                for piece in pieces:
                    if self._clock.now() - started > limit:
                        raise self._timed_out(limit, is_deadline)
                    choice = piece["choices"][0]
                    delta = choice.get("delta", {}).get("content") or ""
                    if choice.get("finish_reason") == "length":
                        finish = "length"
                    if delta:
                        completion_tokens += 1
                        yield ChatChunk(delta)
            finally:  # stops llama.cpp after the token in flight (its stream is a generator)
                pieces.close()
                # tokens in the context now = the templated prompt + the generated tokens
                prompt_tokens = max(int(llm.n_tokens) - completion_tokens, 0)
                _report_read(llm, read_before, prompt_tokens)
            yield ChatChunk("", finish, Usage(prompt_tokens, completion_tokens))
        except ChatModelError:
            raise
        except (ValueError, RuntimeError) as exc:  # e.g. the prompt exceeds n_ctx
            if self._clock.now() - started > limit:  # the decode was aborted at the limit
                raise self._timed_out(limit, is_deadline) from exc
            raise ChatModelError(f"{self.name} failed: {exc}", model=self.name) from exc
        finally:
            self._abort_at = None

    def _timed_out(self, limit: float, is_deadline: bool) -> ModelTimeoutError:
        error = DeadlineExceededError if is_deadline else ModelTimeoutError
        what = "the request's deadline" if is_deadline else f"{limit:.1f} s"
        return error(f"{self.name} exceeded {what}", model=self.name, timeout_s=limit)


def _prompt_counters(llm: Any) -> tuple[float, int]:
    """llama.cpp's running totals for this context: (ms spent on prompt decodes, their tokens).
    A decode of more than one token counts as prompt evaluation; the generated tokens, decoded
    one at a time, do not."""
    import llama_cpp

    perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
    return float(perf.t_p_eval_ms), int(perf.n_p_eval)


def _report_read(llm: Any, before: tuple[float, int], prompt_tokens: int) -> None:
    """How this call read its prompt, into the call log being recorded (if any)."""
    if (log := current_log()) is None:
        return
    ms, tokens = _prompt_counters(llm)
    evaluated = tokens - before[1]
    log.read_prompt(PromptRead(ms - before[0], evaluated, max(prompt_tokens - evaluated, 0)))


def _response_format(request: ChatRequest) -> dict[str, Any] | None:
    """A JSON schema becomes llama.cpp's grammar-constrained JSON: the reply cannot be
    anything but a JSON value of that shape (until ``max_tokens`` cuts it)."""
    if request.json_schema is None:
        return None
    return {"type": "json_object", "schema": dict(request.json_schema)}

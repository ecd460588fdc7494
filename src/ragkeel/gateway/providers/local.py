"""``LocalChatModel``: a GGUF model run in-process by llama.cpp (``llama-cpp-python``).

* The model file is verified by sha256 before it is loaded (``gguf_files.verify``); nothing
  else is ever loaded. Loading is lazy (first call) and happens once per process.
* The chat template is the one stored in the GGUF (llama-cpp-python reads
  ``tokenizer.chat_template``); token counts come from the model's own ``tokenize``.
* llama.cpp reuses the KV cache for the longest common prefix with the previous call, so the
  fixed system prompt is evaluated once, not per question.
* llama.cpp has no timeout: the stream checks the clock between tokens and stops with
  ``ModelTimeoutError``. Closing the iterator stops generation after the current token.
* One ``Llama`` context is not thread-safe; calls are serialised by a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragkeel.gateway.base import ChatChunk, ChatRequest, ChatResponse, FinishReason, Usage
from ragkeel.gateway.errors import ChatModelError, ModelTimeoutError, ModelUnavailableError
from ragkeel.gateway.gguf_files import GgufModel, verify

_INSTALL_HINT = "run `make setup`: it builds llama-cpp-python==0.3.36 once per machine"


class LocalChatModel:
    def __init__(
        self,
        models_dir: Path,
        model: GgufModel,
        *,
        n_ctx: int = 4096,
        threads: int = 0,
        default_timeout_s: float = 120.0,
    ) -> None:
        self.models_dir = Path(models_dir)
        self.model = model
        self.n_ctx = n_ctx
        self.threads = threads
        self.default_timeout_s = default_timeout_s
        self._llm: Any = None
        self._lock = threading.Lock()
        self.load_seconds: float | None = None

    @property
    def name(self) -> str:
        return self.model.key

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def load(self) -> None:
        """Verify and load the model now (otherwise the first call does it)."""
        with self._lock:
            self._ensure_loaded()

    def _ensure_loaded(self) -> Any:
        if self._llm is not None:
            return self._llm
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelUnavailableError(
                "llama-cpp-python is not installed", model=self.name, hint=_INSTALL_HINT
            ) from exc
        path = verify(self.models_dir, self.model)  # ModelError / ModelChecksumError
        started = time.perf_counter()
        try:
            self._llm = Llama(
                model_path=str(path),
                n_ctx=self.n_ctx,
                n_threads=self.threads or None,
                verbose=False,
            )
        except Exception as exc:  # llama.cpp raises ValueError/RuntimeError on a bad file
            raise ModelUnavailableError(f"cannot load {path}: {exc}", model=self.name) from exc
        self.load_seconds = time.perf_counter() - started
        return self._llm

    def count_tokens(self, text: str) -> int:
        with self._lock:
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

    def stream(self, request: ChatRequest) -> Iterator[ChatChunk]:
        timeout = request.timeout_s or self.default_timeout_s
        with self._lock:
            llm = self._ensure_loaded()
            messages = [{"role": m.role, "content": m.content} for m in request.messages]
            started = time.monotonic()
            try:
                pieces = llm.create_chat_completion(
                    messages=messages,
                    max_tokens=request.max_tokens,
                    temperature=request.temperature,
                    stop=list(request.stop) or None,
                    stream=True,
                    response_format=_response_format(request),
                )
                completion_tokens = 0
                finish: FinishReason = "stop"
                for piece in pieces:
                    if time.monotonic() - started > timeout:
                        pieces.close()
                        raise ModelTimeoutError(
                            f"{self.name} exceeded {timeout:.0f} s",
                            model=self.name,
                            timeout_s=timeout,
                        )
                    choice = piece["choices"][0]
                    delta = choice.get("delta", {}).get("content") or ""
                    if choice.get("finish_reason") == "length":
                        finish = "length"
                    if delta:
                        completion_tokens += 1
                        yield ChatChunk(delta)
                # tokens in the context now = the templated prompt + the generated tokens
                prompt_tokens = max(int(llm.n_tokens) - completion_tokens, 0)
                yield ChatChunk("", finish, Usage(prompt_tokens, completion_tokens))
            except ChatModelError:
                raise
            except (ValueError, RuntimeError) as exc:  # e.g. the prompt exceeds n_ctx
                raise ChatModelError(f"{self.name} failed: {exc}", model=self.name) from exc


def _response_format(request: ChatRequest) -> dict[str, Any] | None:
    """A JSON schema becomes llama.cpp's grammar-constrained JSON: the reply cannot be
    anything but a JSON value of that shape (until ``max_tokens`` cuts it)."""
    if request.json_schema is None:
        return None
    return {"type": "json_object", "schema": dict(request.json_schema)}

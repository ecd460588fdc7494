"""``WarmPrefix``: the answer prompt's fixed prefix read into a local model's KV cache once, at
load, and put back when another prompt overwrote it (issue 14).

llama-cpp-python reuses the longest token prefix a prompt shares with the previous one, so an
answer after an answer reads only what follows the system message. Two cases still paid for it:
the first question after the model loaded (a fresh server's first user), and the first answer
after a prompt with another system message (a JSON answer, an evaluation judge) overwrote the
cache. ``warm`` reads the prefix (the answer template rendered with an empty question and no
sources: the system message and the start of the user message) and keeps a copy of that
sequence's KV cells (``llama_state_seq_get_data``: a few MB for ~350 tokens, not the full state
with its logits, which ``Llama.save_state`` copies: ~200 MB). ``restore`` runs before each
generation, with the generation slot held: when the cache no longer starts with the system
message's tokens it puts the copy back, and llama.cpp's prefix matching does the rest.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

from ragkeel.gateway.base import ChatMessage

_SEQ = 0  # llama-cpp-python decodes every prompt as sequence 0


class WarmPrefix:
    """One model's warmed prefix. Not thread-safe: called at load and with the slot held."""

    def __init__(self, messages: Sequence[ChatMessage]) -> None:
        self.messages = tuple(messages)
        self.tokens: list[int] = []  # the warmed prompt's tokens
        self.head = 0  # how many of them the system message surely covers
        self._cells: Any = None  # the copied KV cells of sequence 0
        self.restored = 0  # how many times the copy was put back

    def warm(self, llm: Any) -> None:
        """Read the prefix into ``llm``'s KV cache (one generated token) and keep a copy."""
        import llama_cpp

        messages = [{"role": m.role, "content": m.content} for m in self.messages]
        for _ in llm.create_chat_completion(messages=messages, max_tokens=1, stream=True):
            pass
        n = int(llm.n_tokens)
        self.tokens = [int(t) for t in llm.input_ids[:n]]
        system = next((m.content for m in self.messages if m.role == "system"), "")
        # the system text's own tokens: fewer than the prompt's share (the template adds some)
        self.head = min(len(llm.tokenize(system.encode("utf-8"), add_bos=False)), n)
        size = llama_cpp.llama_state_seq_get_size(llm.ctx, _SEQ)
        cells = (ctypes.c_uint8 * size)()
        copied = llama_cpp.llama_state_seq_get_data(llm.ctx, cells, size, _SEQ)
        self._cells = cells if copied else None

    def restore(self, llm: Any) -> bool:
        """Put the warmed prefix back when the cache lost it; whether it did."""
        if self._cells is None or not self.head:
            return False
        n = int(llm.n_tokens)
        if (
            n >= self.head
            and [int(t) for t in llm.input_ids[: self.head]] == self.tokens[: self.head]
        ):
            return False  # still there: prefix matching reuses it
        import llama_cpp

        size = len(self._cells)
        if llama_cpp.llama_state_seq_set_data(llm.ctx, self._cells, size, _SEQ) != size:
            llm.reset()  # nothing usable in the cache: the prompt is read in full
            return False
        llm.input_ids[: len(self.tokens)] = self.tokens
        llm.n_tokens = len(self.tokens)
        llm._requires_eval = True  # the restored cells have no logits: decode before sampling
        self.restored += 1
        return True

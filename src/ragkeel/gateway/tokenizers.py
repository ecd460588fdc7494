"""Prompt token counts for remote chat models, for the budget's pre-call cost estimate.

``token_counter_for(model)`` returns a ``count(text) -> int`` for a model name:

==============================================  ============  =========================
model name (after any ``provider/`` prefix)     encoding      exact?
==============================================  ============  =========================
gpt-4o*, chatgpt-4o*, gpt-4.1*, gpt-4.5*,       o200k_base    yes (OpenAI's tokenizer)
gpt-5*, o1*, o3*, o4*
gpt-4*, gpt-3.5*, gpt-35*                       cl100k_base   yes
anything else (Anthropic, Llama, Mistral...)    cl100k_base   no: an approximation
==============================================  ============  =========================

The encodings come from ``bpe-openai`` (tiktoken-compatible, ships both vocabularies offline;
tiktoken itself would download them, which production hosts often cannot). For models outside
OpenAI's families there is no offline tokenizer to use: cl100k_base is a stated *estimate*
(other vocabularies, Claude's included, can differ from it by tens of percent), so a budget
computed from it should keep a margin; ``is_exact(model)`` says which case applies. The
local GGUF model counts with its own tokenizer (``LocalChatModel.count_tokens``), not with this.

``count_message_tokens`` adds OpenAI's documented chat framing: every message costs its
content and role plus 3 tokens, and every reply is primed with 3 more (OpenAI cookbook, "How to
count tokens with tiktoken", for gpt-3.5-turbo-0613 and later models).
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from ragkeel.gateway.base import ChatMessage

TOKENS_PER_MESSAGE = 3  # <|start|>{role}<|message|>...<|end|>
TOKENS_PER_REPLY = 3  # every reply is primed with <|start|>assistant<|message|>
APPROXIMATE_ENCODING = "cl100k_base"

CountTokens = Callable[[str], int]

_O200K = re.compile(r"^(?:gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4)(?:$|[-.:_])")
_CL100K = re.compile(r"^(?:gpt-4|gpt-3\.5|gpt-35)(?:$|[-.:_])")


def encoding_for(model_name: str) -> tuple[str, bool]:
    """``(encoding name, exact)`` for ``model_name``; see the module table."""
    base = model_name.strip().lower().rsplit("/", 1)[-1]  # "openai/gpt-4o" -> "gpt-4o"
    if _O200K.match(base):
        return "o200k_base", True
    if _CL100K.match(base):
        return "cl100k_base", True
    return APPROXIMATE_ENCODING, False


def is_exact(model_name: str) -> bool:
    """Whether ``token_counter_for(model_name)`` is the model's real tokenizer."""
    return encoding_for(model_name)[1]


def token_counter_for(model_name: str) -> CountTokens:
    """A thread-safe ``count(text)`` for ``model_name`` (special-token text such as
    ``<|endoftext|>`` is counted as ordinary text, as a provider sees user content)."""
    return _counter(encoding_for(model_name)[0])


_LOAD_LOCK = threading.Lock()


def load_encoding(encoding_name: str) -> Any:
    """bpe-openai's ``Encoding`` (tiktoken's API), loaded once. bpe-openai 0.1.4 reads its data
    with ``importlib.resources.open_binary``, deprecated since Python 3.11: that warning is the
    library's and is silenced here (under a lock: warning filters are process-wide)."""
    with _LOAD_LOCK:
        return _load(encoding_name)


@cache
def _load(encoding_name: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import bpe_openai  # imported here: see above

        return bpe_openai.get_encoding(encoding_name)


@cache
def _counter(encoding_name: str) -> CountTokens:
    """One loaded encoding per name (loading takes tens of milliseconds; counting is fast)."""
    encoding = load_encoding(encoding_name)

    def count(text: str) -> int:
        return len(encoding.encode_ordinary(text)) if text else 0

    return count


def count_message_tokens(messages: Sequence[ChatMessage], count: CountTokens) -> int:
    """Prompt tokens of a chat request: each message's role and content plus its framing, plus
    the reply priming."""
    framing = sum(TOKENS_PER_MESSAGE + count(m.role) for m in messages)
    return framing + sum(count(m.content) for m in messages) + TOKENS_PER_REPLY

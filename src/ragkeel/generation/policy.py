"""How answers are made: ``AnswerPolicy``, set once for an answerer, and ``Budget``, given per
question.

``AnswerPolicy`` is one frozen value with the answerer's configuration (the container builds it
from the ``generation``, ``gateway`` and ``retrieval`` settings; a policy built in code gets the
answer flow's own defaults, the settings' except ``deadline_s``, which is unset): how many chunks to retrieve, the gate's thresholds, the context budget, how hits are cut into sources (``packing``), the answer's
length, the prompt template, the default mode (generative or extractive) and retrieval mode, the
model call's timeout and deadline, the default token budget of a request, what citation
checking and the extractive answer allow, the output checks of generated answers (``guard``,
``safety.py``; None: none) and what becomes of an unsupported one (``ungrounded``,
``ungrounded.py``). It checks itself when built (``ValueError``).

What may differ per question (``k``, the mode, the budget, an output schema, the collection) is
an argument of ``Answerer.answer``/``stream``, never a change to a shared policy.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from ragkeel.generation.citations import DEFAULT_MIN_SUPPORT
from ragkeel.generation.context import DEFAULT_CONTEXT_BUDGET, WHOLE_CHUNKS, Packing
from ragkeel.generation.extractive import DEFAULT_SENTENCES
from ragkeel.generation.gate import DEFAULT_DENSE_THRESHOLD
from ragkeel.generation.safety import OutputGuard
from ragkeel.generation.templates import DEFAULT_TEMPLATE
from ragkeel.generation.ungrounded import UngroundedPolicy
from ragkeel.retrieval.hybrid import Mode

GenerationMode = Literal["generative", "extractive"]
MIN_CONTEXT_BUDGET = 128  # tokens: a smaller context budget is a configuration error
MIN_ANSWER_TOKENS = 64  # an answer squeezed by a request's max_tokens keeps at least these


@dataclass(frozen=True, slots=True)
class Budget:
    """What one request may spend: ``max_cost`` in USD across all model calls, ``max_tokens``
    prompt plus completion, ``answer_tokens`` the completion alone (OpenAI's ``max_tokens``;
    at most the policy's ``max_answer_tokens``) — None: no limit of the request's own.
    ``tenant`` keys the gateway's limits and ledger."""

    tenant: str | None = None
    max_cost: float | None = None
    max_tokens: int | None = None
    answer_tokens: int | None = None


NO_BUDGET = Budget()


@dataclass(frozen=True, slots=True)
class AnswerPolicy:
    """The answerer's configuration (see the module docstring).

    ``deadline_s`` bounds the whole model call, retries and fallbacks included (None: only
    ``model_timeout_s`` per attempt); ``default_max_tokens`` is the prompt-plus-answer budget of a
    request that gives none (None: no limit)."""

    k: int = 8
    gate_threshold: float = DEFAULT_DENSE_THRESHOLD
    gate_keyword_threshold: float | None = None
    context_budget: int = DEFAULT_CONTEXT_BUDGET
    packing: Packing = WHOLE_CHUNKS  # whole chunks or the question's sentences (context.py)
    max_answer_tokens: int = 256
    template_version: str = DEFAULT_TEMPLATE
    mode: GenerationMode = "generative"
    retrieval_mode: Mode = "hybrid"
    model_timeout_s: float | None = 60.0
    deadline_s: float | None = None
    default_max_tokens: int | None = None
    min_support: float = DEFAULT_MIN_SUPPORT
    extractive_sentences: int = DEFAULT_SENTENCES
    guard: OutputGuard | None = None
    ungrounded: UngroundedPolicy = "as_is"

    def __post_init__(self) -> None:
        if self.k < 1 or self.max_answer_tokens < 1 or self.extractive_sentences < 1:
            raise ValueError("k, max_answer_tokens and extractive_sentences must be at least 1")
        if self.context_budget < MIN_CONTEXT_BUDGET:
            raise ValueError(f"context_budget must be at least {MIN_CONTEXT_BUDGET} tokens")
        if self.mode not in ("generative", "extractive"):
            raise ValueError(f"mode must be 'generative' or 'extractive', got {self.mode!r}")

    def budget_for(self, budget: Budget) -> Budget:
        """``budget`` with the policy's ``default_max_tokens`` where it gives no token limit."""
        if budget.max_tokens is None and self.default_max_tokens is not None:
            return dataclasses.replace(budget, max_tokens=self.default_max_tokens)
        return budget

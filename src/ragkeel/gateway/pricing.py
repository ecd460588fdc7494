"""Prices of remote chat models, as data, and the cost of a call.

A ``PriceTable`` maps a model name (``ChatModel.name``) to a ``Price`` in USD per million
tokens, input and output separately. A bare ``PriceTable()`` knows no prices; the table is built
from settings with ``PriceTable.from_mapping``::

    PriceTable.from_mapping({"gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}})

``DEFAULT_PRICES`` holds the published list prices of common OpenAI and Anthropic models
(standard tier, no batch or cached-input discounts); ``PriceTable.with_defaults(config)`` starts
from them and lets each configured entry replace the default of its model. Prices change:
configure the ones you are billed at (Azure, a proxy or a negotiated rate differ).

``cost`` is 0.0 for local models (``local=True``, or a name listed in ``local_models``) and for
an unknown remote model when the table has no ``default``; callers use ``known(model)`` to mark
such a cost as unknown rather than free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ragkeel.gateway.base import Usage

_PER = 1_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def __post_init__(self) -> None:
        for value in (self.input_per_mtok, self.output_per_mtok):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"a price must be finite and non-negative, got {value}")

    def cost(self, usage: Usage) -> float:
        return (
            usage.prompt_tokens * self.input_per_mtok
            + usage.completion_tokens * self.output_per_mtok
        ) / _PER


@dataclass(frozen=True)
class PriceTable:
    """Model name -> ``Price``; ``default`` prices any remote model not listed (``None``: such
    models are unknown, cost 0.0 and ``known`` is False). ``local_models`` are always free."""

    prices: Mapping[str, Price] = field(default_factory=dict)
    default: Price | None = None
    local_models: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "prices", MappingProxyType(dict(self.prices)))

    @classmethod
    def from_mapping(
        cls,
        raw: Mapping[str, Mapping[str, float] | Price],
        *,
        default: Mapping[str, float] | Price | None = None,
        local_models: Iterable[str] = (),
    ) -> PriceTable:
        """Build from plain data, e.g. a settings dict
        ``{"model": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}``."""
        return cls(
            {name: _price(value, name) for name, value in raw.items()},
            _price(default, "default") if default is not None else None,
            frozenset(local_models),
        )

    @classmethod
    def with_defaults(
        cls,
        raw: Mapping[str, Mapping[str, float] | Price] | None = None,
        *,
        default: Mapping[str, float] | Price | None = None,
        local_models: Iterable[str] = (),
    ) -> PriceTable:
        """``DEFAULT_PRICES`` with ``raw``'s entries replacing (or adding) models one by one."""
        merged: dict[str, Mapping[str, float] | Price] = dict(DEFAULT_PRICES)
        merged.update(raw or {})
        return cls.from_mapping(merged, default=default, local_models=local_models)

    def price(self, model: str) -> Price | None:
        return self.prices.get(model, self.default)

    def known(self, model: str, *, local: bool = False) -> bool:
        """Whether ``cost`` for ``model`` is a real figure (listed, defaulted, or local)."""
        return local or model in self.local_models or self.price(model) is not None

    def cost(self, model: str, usage: Usage, *, local: bool = False) -> float:
        """USD for one call; 0.0 for local models and for unknown ones (see ``known``)."""
        if local or model in self.local_models:
            return 0.0
        price = self.price(model)
        return price.cost(usage) if price is not None else 0.0


def _price(value: Mapping[str, float] | Price, name: str) -> Price:
    if isinstance(value, Price):
        return value
    try:
        return Price(float(value["input_per_mtok"]), float(value["output_per_mtok"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"price for {name!r} needs input_per_mtok and output_per_mtok, got {value!r}"
        ) from exc


# USD per 1M tokens (input, output), standard tier, as published on openai.com/api/pricing and
# anthropic.com/pricing, checked 2025-08. Dated snapshots share their alias's price.
_PUBLISHED: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o-2024-11-20": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o-mini-2024-07-18": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "claude-opus-4-1": (15.00, 75.00),
    "claude-opus-4-1-20250805": (15.00, 75.00),
    "claude-opus-4-0": (15.00, 75.00),
    "claude-opus-4-20250514": (15.00, 75.00),
    "claude-sonnet-4-0": (3.00, 15.00),
    "claude-sonnet-4-20250514": (3.00, 15.00),
    "claude-3-7-sonnet-latest": (3.00, 15.00),
    "claude-3-7-sonnet-20250219": (3.00, 15.00),
    "claude-3-5-sonnet-latest": (3.00, 15.00),
    "claude-3-5-sonnet-20241022": (3.00, 15.00),
    "claude-3-5-haiku-latest": (0.80, 4.00),
    "claude-3-5-haiku-20241022": (0.80, 4.00),
    "claude-3-haiku-20240307": (0.25, 1.25),
}
_ALIASES = {  # short names people write in config
    "claude-opus-4": "claude-opus-4-0",
    "claude-sonnet-4": "claude-sonnet-4-0",
    "claude-3-7-sonnet": "claude-3-7-sonnet-latest",
    "claude-3-5-sonnet": "claude-3-5-sonnet-latest",
    "claude-3-5-haiku": "claude-3-5-haiku-latest",
}
DEFAULT_PRICES: Mapping[str, Price] = MappingProxyType(
    {name: Price(*pair) for name, pair in _PUBLISHED.items()}
    | {alias: Price(*_PUBLISHED[target]) for alias, target in _ALIASES.items()}
)

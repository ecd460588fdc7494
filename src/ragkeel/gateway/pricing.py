"""Prices of remote chat models, as data, and the cost of a call.

A ``PriceTable`` maps a model name (``ChatModel.name``) to a ``Price`` in USD per million
tokens, input and output separately. The package ships no prices (they change and differ by
provider): the table is built from settings with ``PriceTable.from_mapping``::

    PriceTable.from_mapping({"gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}})

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

from __future__ import annotations

import math

import pytest

from ragkeel.gateway.base import Usage
from ragkeel.gateway.pricing import DEFAULT_PRICES, Price, PriceTable


def test_price_cost_per_million_tokens() -> None:
    price = Price(input_per_mtok=0.15, output_per_mtok=0.6)
    assert price.cost(Usage(1_000_000, 0)) == pytest.approx(0.15)
    assert price.cost(Usage(0, 1_000_000)) == pytest.approx(0.6)
    assert price.cost(Usage(2_000, 500)) == pytest.approx(2_000 * 0.15e-6 + 500 * 0.6e-6)
    assert price.cost(Usage()) == 0.0


@pytest.mark.parametrize("bad", [-1.0, math.inf, math.nan])
def test_price_rejects_bad_values(bad: float) -> None:
    with pytest.raises(ValueError):
        Price(bad, 1.0)
    with pytest.raises(ValueError):
        Price(1.0, bad)


def test_empty_table_knows_nothing() -> None:
    table = PriceTable()
    assert table.cost("gpt-x", Usage(1000, 1000)) == 0.0
    assert not table.known("gpt-x")


def test_from_mapping_and_lookup() -> None:
    table = PriceTable.from_mapping(
        {"a": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}, "b": Price(3.0, 4.0)}
    )
    assert table.known("a") and table.known("b") and not table.known("c")
    assert table.cost("a", Usage(500_000, 250_000)) == pytest.approx(0.5 + 0.5)
    assert table.cost("b", Usage(1_000_000, 1_000_000)) == pytest.approx(7.0)
    assert table.cost("c", Usage(1_000_000, 1_000_000)) == 0.0


def test_default_prices_unlisted_models() -> None:
    table = PriceTable.from_mapping(
        {"a": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}},
        default={"input_per_mtok": 10.0, "output_per_mtok": 20.0},
    )
    assert table.known("anything")
    assert table.cost("anything", Usage(100_000, 100_000)) == pytest.approx(3.0)
    assert table.cost("a", Usage(100_000, 100_000)) == pytest.approx(0.3)


def test_local_models_are_free() -> None:
    table = PriceTable.from_mapping(
        {}, default=Price(10.0, 20.0), local_models=["qwen2.5-0.5b-instruct-q4_k_m"]
    )
    usage = Usage(10_000, 10_000)
    assert table.cost("qwen2.5-0.5b-instruct-q4_k_m", usage) == 0.0
    assert table.known("qwen2.5-0.5b-instruct-q4_k_m")
    assert table.cost("scripted", usage, local=True) == 0.0
    assert PriceTable().known("scripted", local=True)


def test_from_mapping_rejects_incomplete_entries() -> None:
    with pytest.raises(ValueError, match="output_per_mtok"):
        PriceTable.from_mapping({"a": {"input_per_mtok": 1.0}})


def test_table_is_immutable_copy() -> None:
    raw = {"a": Price(1.0, 1.0)}
    table = PriceTable(raw)
    raw["b"] = Price(2.0, 2.0)
    assert not table.known("b")
    with pytest.raises(TypeError):
        table.prices["c"] = Price(1.0, 1.0)  # type: ignore[index]


def test_default_prices_cover_common_models() -> None:
    table = PriceTable.with_defaults()
    for model in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o4-mini"):
        assert table.known(model), model
    for model in ("claude-sonnet-4", "claude-3-5-sonnet", "claude-3-5-haiku", "claude-opus-4"):
        assert table.known(model), model
    # published list prices (USD per 1M tokens), see pricing.py for the date
    assert DEFAULT_PRICES["gpt-4o-mini"] == Price(0.15, 0.60)
    assert DEFAULT_PRICES["gpt-4o"] == Price(2.50, 10.00)
    assert DEFAULT_PRICES["claude-sonnet-4"] == DEFAULT_PRICES["claude-sonnet-4-20250514"]
    assert table.cost("gpt-4o", Usage(1_000_000, 1_000_000)) == pytest.approx(12.5)
    assert not table.known("my-private-model")


def test_config_entries_replace_defaults_per_model() -> None:
    table = PriceTable.with_defaults(
        {"gpt-4o": {"input_per_mtok": 1.0, "output_per_mtok": 4.0}, "mine": Price(0.5, 0.5)},
        local_models=["qwen"],
    )
    assert table.price("gpt-4o") == Price(1.0, 4.0)
    assert table.price("gpt-4o-mini") == DEFAULT_PRICES["gpt-4o-mini"]  # others untouched
    assert table.price("mine") == Price(0.5, 0.5)
    assert table.cost("qwen", Usage(1000, 1000)) == 0.0
    assert DEFAULT_PRICES["gpt-4o"] == Price(2.50, 10.00)  # the defaults are not modified

import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from genai_prices.types import ModelPrice, Tier, TieredPrices

from protocols.unified import Usage
from rewrite.accounting import prices
from rewrite.accounting.prices import Price, PriceTable, converted, maintained
from rewrite.config import ConfigError, parse

TABLE = PriceTable()


@pytest.mark.parametrize("model, base", [
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),  # not gpt-4o's price: the longer name is the model
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("gpt-4-0613", "gpt-4"),
    ("gpt-4-1106-preview", "gpt-4-turbo"),
    ("o3-mini-2025-01-31", "o3-mini"),
    ("gpt-5-2025-08-07", "gpt-5"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("claude-opus-4-1@20250805", "claude-opus-4-1"),
    ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
    ("gemini-2.0-flash-001", "gemini-2.0-flash"),
    ("models/gemini-2.5-pro", "gemini-2.5-pro"),
])
def test_built_in_prices_match_dated_and_aliased_names(model, base):
    assert TABLE.price(model) == TABLE.price(base) is not None


# The vendors' published prices, USD per million tokens (standard tier, 5-minute cache writes).
@pytest.mark.parametrize("model, published", [
    ("gpt-4o-mini", Price(0.15, 0.60, cache_read=0.075)),
    ("gpt-5", Price(1.25, 10.0, cache_read=0.125)),
    ("claude-haiku-4-5", Price(1.0, 5.0, cache_read=0.10, cache_write=1.25)),
    ("claude-opus-4-1", Price(15.0, 75.0, cache_read=1.5, cache_write=18.75)),
    ("gemini-2.5-flash", Price(0.30, 2.50, cache_read=0.03)),
])
def test_built_in_prices_are_the_vendors_published_ones(model, published):
    assert TABLE.price(model) == published


def test_a_long_prompt_pays_the_long_context_tier_on_every_token():
    # claude-sonnet-4-5: $3 / $15 per million, $6 / $22.50 above 200k input tokens (cache reads and writes included).
    price = TABLE.price("claude-sonnet-4-5")
    short = Usage(input_tokens=200_000, output_tokens=1000, cache_read_tokens=150_000)
    long = Usage(input_tokens=200_001, output_tokens=1000, cache_read_tokens=150_000)
    assert price.cost(short) == pytest.approx((50_000 * 3.0 + 150_000 * 0.30 + 1000 * 15.0) / 1e6)
    assert price.cost(long) == pytest.approx((50_001 * 6.0 + 150_000 * 0.60 + 1000 * 22.5) / 1e6)


def test_genai_prices_tiers_and_missing_keys_convert_field_by_field():
    tiered = TieredPrices(Decimal("2"), [Tier(100, Decimal("3")), Tier(10, Decimal("2.5"))])
    price = converted(ModelPrice(input_mtok=tiered, output_mtok=Decimal("8"), cache_read_mtok=Decimal("0.2")))
    assert price == Price(2.0, 8.0, cache_read=0.2, tiers=((100, Price(3.0, 8.0, cache_read=0.2)),
                                                           (10, Price(2.5, 8.0, cache_read=0.2))))
    assert converted(ModelPrice(input_mtok=Decimal("0.1"))) is None  # no output price: not a model to cost


def test_a_price_that_depends_on_the_time_of_day_is_the_one_in_force_at_each_answer(monkeypatch):
    # deepseek-chat: $0.27 / $1.10 per million from 00:30 to 16:30 UTC, half that off-peak.
    table, usage = PriceTable(), Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    at(monkeypatch, 12, 0)
    assert table.cost("deepseek-chat", usage) == pytest.approx(0.27 + 1.10)
    at(monkeypatch, 20, 0)
    assert table.cost("deepseek-chat", usage) == pytest.approx(0.135 + 0.55)


def at(monkeypatch, hour: int, minute: int) -> None:
    """Make rewrite.accounting.prices see this time of day (UTC) as now."""
    when = datetime(2026, 11, 23, hour, minute, tzinfo=UTC)
    monkeypatch.setattr(prices, "datetime", type("Fixed", (datetime,), {"now": staticmethod(lambda tz=None: when)}))


def test_a_models_price_is_looked_up_once():
    looked_up = []
    table = PriceTable(built_in=lambda model: looked_up.append(model) or Price(1.0, 2.0))
    for _ in range(3):
        assert table.cost("gpt-x", Usage(input_tokens=10, output_tokens=10)) == pytest.approx(30 / 1e6)
    assert looked_up == ["gpt-x"]


@pytest.mark.parametrize("model", ["gpt-5.9", "fake-model", "", "claude-opus-9", "my-gpt-4o", "gemini-9-ultra"])
def test_a_model_not_in_the_table_has_an_unknown_price_not_zero(model):
    assert TABLE.price(model) is None
    assert TABLE.cost(model, Usage(input_tokens=1000, output_tokens=1000)) is None


def test_every_kind_of_token_is_counted_once_at_its_price():
    price = Price(input=3.0, output=15.0, cache_read=0.30, cache_write=3.75)
    # Unified input 3050 = 50 plain + 2000 cache reads + 1000 cache writes; output 300, 100 of it reasoning.
    usage = Usage(input_tokens=3050, output_tokens=300, reasoning_tokens=100, cache_read_tokens=2000,
                  cache_write_tokens=1000)
    expected = (50 * 3.0 + 2000 * 0.30 + 1000 * 3.75 + 300 * 15.0) / 1e6
    assert price.cost(usage) == pytest.approx(expected)


def test_a_cold_prefix_costs_its_cache_writes_above_cache_reads_of_the_same_tokens():
    # claude-haiku-4-5: input $1, cache write $1.25, cache read $0.10 per million: a written token costs $1.15 more.
    usage = Usage(input_tokens=10_050, output_tokens=30, cache_read_tokens=2000, cache_write_tokens=8000)
    assert TABLE.cold_cost("claude-haiku-4-5", usage) == pytest.approx(8000 * 1.15 / 1e6)
    assert TABLE.cold_cost("claude-haiku-4-5", Usage(input_tokens=10, cache_read_tokens=10)) == 0.0  # all warm
    assert TABLE.cold_cost("fake-model", usage) is None  # unknown price: unknown, not zero
    # the long-context tier's prices (claude-sonnet-4-5 above 200k: write $7.50, read $0.60)
    long = Usage(input_tokens=250_000, cache_write_tokens=100_000)
    assert TABLE.cold_cost("claude-sonnet-4-5", long) == pytest.approx(100_000 * (7.50 - 0.60) / 1e6)
    # a cache write priced at the input price and a read never dearer: no negative cost
    assert Price(2.0, 8.0, cache_read=3.0).cold_cost(usage) == 0.0


def test_defaults_cache_at_the_input_price_and_reasoning_at_the_output_price():
    usage = Usage(input_tokens=100, output_tokens=50, reasoning_tokens=20, cache_read_tokens=40, cache_write_tokens=10)
    assert Price(2.0, 8.0).cost(usage) == pytest.approx((100 * 2.0 + 50 * 8.0) / 1e6)
    stated = Price(2.0, 8.0, reasoning=1.0)
    assert stated.cost(usage) == pytest.approx((100 * 2.0 + 30 * 8.0 + 20 * 1.0) / 1e6)


def test_a_built_in_answer_cost():
    # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million.
    usage = Usage(input_tokens=2006, output_tokens=300, reasoning_tokens=0, cache_read_tokens=1920)
    assert TABLE.cost("gpt-4o-mini-2024-07-18", usage) == pytest.approx((86 * 0.15 + 1920 * 0.075 + 300 * 0.60) / 1e6)
    assert TABLE.cost("gpt-4o-mini", Usage()) == 0.0  # known and nothing used: zero, not unknown


def test_inconsistent_counts_never_give_a_negative_cost():
    usage = Usage(input_tokens=5, output_tokens=1, reasoning_tokens=9, cache_read_tokens=50, cache_write_tokens=50)
    assert TABLE.cost("claude-sonnet-4-5", usage) >= 0


def test_config_prices_override_the_built_in_table_by_glob():
    config = parse("""
prices:
  "gpt-4o*": {input: 1, output: 2}
  "gpt-4o-mini*": {input: 3, output: 4, cache_read: 0.5}
  gpt-4o-mini-special: {input: 5, output: 6}
  "acme-*": {input: 7, output: 8, cache_write: 9, reasoning: 10}
""")
    table = PriceTable.from_config(config.prices)
    assert table.price("gpt-4o-2024-08-06") == Price(1, 2)
    assert table.price("gpt-4o-mini-2024-07-18") == Price(3, 4, cache_read=0.5)  # the more specific glob
    assert table.price("gpt-4o-mini-special") == Price(5, 6)  # an exact name before any glob
    assert table.price("acme-large") == Price(7, 8, cache_write=9, reasoning=10)
    assert table.price("claude-haiku-4-5") == maintained("claude-haiku-4-5") is not None  # the rest stays
    assert table.price("acme") is None


def test_globs_of_equal_weight_keep_the_order_written():
    config = parse('prices: {"a*": {input: 1, output: 1}, "*b": {input: 2, output: 2}}')
    assert PriceTable.from_config(config.prices).price("ab") == Price(1, 1)


@pytest.mark.parametrize("text, message", [
    ("prices: {gpt-x: {input: -1, output: 2}}", r"^prices\.gpt-x\.input: Input should be greater than or equal to 0$"),
    ("prices: {gpt-x: {input: 1}}", r"^prices\.gpt-x\.output: Field required$"),
    ("prices: {gpt-x: {input: 1, output: 2, cached: 3}}", r"^prices\.gpt-x\.cached: Extra inputs are not permitted$"),
    ("prices: {gpt-x: {input: one, output: 2}}", r"^prices\.gpt-x\.input: Input should be a valid number"),
    ("prices: {gpt-x: {input: .inf, output: 2}}", r"^prices\.gpt-x\.input: Input should be a finite number$"),
    ("prices: [gpt-x]", r"^prices: Input should be a valid dictionary$"),
])
def test_a_bad_price_stops_start_up_with_one_line_naming_it(text, message):
    with pytest.raises(ConfigError, match=message):
        parse(text)


def test_the_built_in_prices_are_read_with_the_config_not_at_the_first_priced_answer():
    # (a process of its own: genai-prices reads its data once a process, and another test may have made it read it)
    code = ("from genai_prices import data_snapshot as d; from rewrite.config import parse;"
            "from rewrite.accounting.prices import PriceTable;"
            "before = d._bundled_snapshot.cache_info().currsize; PriceTable.from_config(parse('').prices);"
            "print(before, d._bundled_snapshot.cache_info().currsize)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout
    assert out.split() == ["0", "1"]

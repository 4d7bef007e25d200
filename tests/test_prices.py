import pytest

from protocols.unified import Usage
from rewrite.config import ConfigError, parse
from rewrite.prices import BUILT_IN, Price, PriceTable

TABLE = PriceTable()


@pytest.mark.parametrize("model, base", [
    ("gpt-4o-mini", "gpt-4o-mini"),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),  # not gpt-4o's price: the longer name is the model
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("gpt-4-0613", "gpt-4"),
    ("gpt-4-1106-preview", "gpt-4-1106"),
    ("o3-mini-2025-01-31", "o3-mini"),
    ("gpt-5-2025-08-07", "gpt-5"),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
    ("claude-opus-4-1@20250805", "claude-opus-4-1"),
    ("claude-haiku-4-5", "claude-haiku-4-5"),
    ("gemini-2.5-flash", "gemini-2.5-flash"),
    ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
    ("gemini-2.0-flash-001", "gemini-2.0-flash"),
    ("models/gemini-2.5-pro", "gemini-2.5-pro"),
    ("gemini-3-pro-preview", "gemini-3-pro"),
])
def test_built_in_prices_match_dated_and_aliased_names(model, base):
    assert TABLE.price(model) is BUILT_IN[base]


@pytest.mark.parametrize("model", ["gpt-5.9", "fake-model", "", "claude-opus-9", "gpt-4o-mini-tts", "my-gpt-4o"])
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
    assert table.price("claude-haiku-4-5") is BUILT_IN["claude-haiku-4-5"]  # the rest of the table stays
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

"""What an answer cost: USD per million tokens of each kind, per model.

Built-in prices come from `genai-prices` (pydantic's maintained table, bundled with the installed release: never
fetched at run time), long-context tiers included; the config's `prices:` overrides them by model glob. A model
found in neither has an unknown cost (None), never 0. Cache reads and writes default to the input price, reasoning
to the output price. Both tables count the way Rotator's Usage does: input includes cache reads and writes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import cast

from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import TieredPrices
from pydantic import BaseModel, ConfigDict, Field

from protocols.unified import Usage

PER = 1_000_000
WILDCARDS = re.compile(r"[*?\[\]]")
# What vendors append to a model's name for a snapshot of it: a date, a version number, an alias. Stripped from a
# name genai-prices does not know ("gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929", "gpt-4-0613",
# "gemini-2.0-flash-001", "claude-opus-4-1@20250805", "gemini-2.5-flash-preview-05-20").
SNAPSHOT_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|[-@]\d{8}|-\d{3,4}|-latest|-preview(-\d{2}-\d{2,4})?)$")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float | None = None  # None: the input price
    cache_write: float | None = None  # None: the input price
    reasoning: float | None = None  # None: the output price
    # Long-context tiers, highest first: (input tokens, price). A prompt of more input tokens than a tier's start
    # pays that tier's price for every token of the answer, as the vendors bill it.
    tiers: tuple[tuple[int, Price], ...] = ()

    @property
    def reads_cheaper(self) -> bool:
        """Whether reading a prompt from the cache costs less than sending it afresh."""
        return self.cache_read is not None and self.cache_read < self.input

    def cost(self, usage: Usage) -> float:
        """Each token counted once: the unified input includes cache reads and writes, the output reasoning."""
        for start, tier in self.tiers:
            if usage.input_tokens > start:
                return tier.cost(usage)
        read, write = usage.cache_read_tokens, usage.cache_write_tokens
        plain_input = max(0, usage.input_tokens - read - write)
        reasoning = min(usage.reasoning_tokens, usage.output_tokens)
        total = (plain_input * self.input
                 + read * _or(self.cache_read, self.input)
                 + write * _or(self.cache_write, self.input)
                 + (usage.output_tokens - reasoning) * self.output
                 + reasoning * _or(self.reasoning, self.output))
        return total / PER

    def cold_cost(self, usage: Usage) -> float:
        """What the answer's cache writes cost above reading the same tokens from the cache: the price of its cold
        prefix (on Claude a write is 1.25x the input price, a read 0.1x)."""
        for start, tier in self.tiers:
            if usage.input_tokens > start:
                return tier.cold_cost(usage)
        write, read = _or(self.cache_write, self.input), _or(self.cache_read, self.input)
        return usage.cache_write_tokens * max(0.0, write - read) / PER


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


class PriceConfig(BaseModel):
    """One `prices:` entry of the config."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0, allow_inf_nan=False)
    output: float = Field(ge=0, allow_inf_nan=False)
    cache_read: float | None = Field(None, ge=0, allow_inf_nan=False)
    cache_write: float | None = Field(None, ge=0, allow_inf_nan=False)
    reasoning: float | None = Field(None, ge=0, allow_inf_nan=False)

    def price(self) -> Price:
        return Price(self.input, self.output, self.cache_read, self.cache_write, self.reasoning)


# Rotator's Price fields and genai-prices' price keys for them. Its other keys (audio, images, 1-hour cache
# writes, web searches) count what Rotator's Usage does not.
PRICE_KEYS = {"input": "input_mtok", "output": "output_mtok", "cache_read": "cache_read_mtok",
              "cache_write": "cache_write_mtok", "reasoning": "output_reasoning_mtok"}


def maintained(model: str) -> Price | Timed | None:
    """genai-prices' price of `model`; None if it does not know the model, or has no input or output price for it.
    A name it does not know is tried without the "models/" prefix and without its snapshot suffixes."""
    name = model.removeprefix("models/")
    while name:
        try:
            _, info = get_snapshot().find_provider_model(name, None, None, None)
        except LookupError:
            shorter = SNAPSHOT_SUFFIX.sub("", name)
            if shorter == name:
                return None
            name = shorter
            continue
        return Timed(info) if isinstance(info.prices, list) else converted(info.prices)
    return None


class Timed:
    """A model whose genai-prices price depends on when it is used (a new price from a date on, off-peak hours):
    the price in force is picked each time it is asked for; each of its prices is converted once."""

    __slots__ = ("_info", "_converted")

    def __init__(self, info) -> None:
        self._info = info
        self._converted: dict[int, Price | None] = {}  # by id: the ModelPrice objects live as long as `info`

    def now(self) -> Price | None:
        prices = self._info.get_prices(datetime.now(UTC))
        key = id(prices)
        if key not in self._converted:
            self._converted[key] = converted(prices)
        return self._converted[key]


def converted(model_price) -> Price | None:
    """A genai-prices ModelPrice as a Price, its tiers (by input tokens, as genai-prices reads them) included."""
    prices = {field: getattr(model_price, key) for field, key in PRICE_KEYS.items()}
    if prices["input"] is None or prices["output"] is None:
        return None
    starts = sorted({t.start for p in prices.values() if isinstance(p, TieredPrices) for t in p.tiers}, reverse=True)
    return _price_at(prices, -1, tuple((start, _price_at(prices, start)) for start in starts))


def _price_at(prices: dict, above: int, tiers: tuple[tuple[int, Price], ...] = ()) -> Price:
    """genai-prices' prices (by Price field) for prompts of more than `above` input tokens, as a Price."""
    at = {field: _at(price, above) for field, price in prices.items()}
    # `converted` checked that input and output have a price, and a tiered price has a base: neither is None
    return Price(cast(float, at["input"]), cast(float, at["output"]), at["cache_read"], at["cache_write"],
                 at["reasoning"], tiers)


def _at(price, above: int) -> float | None:
    """A genai-prices price for prompts of more than `above` input tokens, as a float."""
    if isinstance(price, TieredPrices):
        price = next((t.price for t in reversed(price.tiers) if above >= t.start), price.base)
    return None if price is None else float(price)


class PriceTable:
    """The price of a model: the config's entries first (an exact name, else the matching glob with the most
    literal characters, the first written on a tie), then the built-in prices (`maintained`). Lookups are cached:
    a request costs one dict lookup (and, for a price that depends on the time, picking the one in force)."""

    def __init__(self, overrides: dict[str, Price] | None = None,
                 built_in: Callable[[str], Price | Timed | None] = maintained) -> None:
        self.overrides = dict(overrides or {})
        self.built_in = built_in
        self._globs = sorted(
            (pattern for pattern in self.overrides if WILDCARDS.search(pattern)),
            key=lambda p: -len(WILDCARDS.sub("", p)),  # sorted() is stable: ties keep the order written
        )
        self._cache: dict[str, Price | Timed | None] = {}

    @classmethod
    def from_config(cls, prices: dict[str, PriceConfig]) -> PriceTable:
        """The config's table, the built-in one loaded with it: genai-prices reads its bundled data (~50 ms) once a
        process, here at start rather than on the event loop at the first priced answer, when streams are under way."""
        get_snapshot()
        return cls({pattern: entry.price() for pattern, entry in prices.items()})

    def price(self, model: str) -> Price | None:
        """The model's price in force now."""
        if model in self._cache:
            found = self._cache[model]
        else:
            found = self._find(model)
            if len(self._cache) < 4096:  # model names come from clients: bounded
                self._cache[model] = found
        return found.now() if isinstance(found, Timed) else found

    def _find(self, model: str) -> Price | Timed | None:
        if model in self.overrides:
            return self.overrides[model]
        for pattern in self._globs:
            if fnmatchcase(model, pattern):
                return self.overrides[pattern]
        return self.built_in(model)

    def cost(self, model: str, usage: Usage) -> float | None:
        """The answer's cost in USD, None when the model's price is unknown."""
        price = self.price(model)
        if price is None:
            return None
        cost = price.cost(usage)
        return round(cost, 10) if math.isfinite(cost) else None

    def cold_cost(self, model: str, usage: Usage) -> float | None:
        """What the answer's cache writes cost above cache reads of the same tokens (`Price.cold_cost`), in USD;
        None when the model's price is unknown."""
        price = self.price(model)
        if price is None or not usage.cache_write_tokens:
            return None if price is None else 0.0
        cost = price.cold_cost(usage)
        return round(cost, 10) if math.isfinite(cost) else None

"""What an answer cost: USD per million tokens of each kind, per model.

A built-in table covers current models of the built-in vendors (standard tier, prompts under any long-context
threshold); the config's `prices:` overrides it by model glob. A model found in neither has an unknown cost
(None), never 0. Cache reads and writes default to the input price, reasoning to the output price.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field

from protocols.unified import Usage

PER = 1_000_000
WILDCARDS = re.compile(r"[*?\[\]]")
# What vendors append to a model's name for a snapshot of it: a date, a version number, an alias. Stripped to
# find the model in the built-in table ("gpt-4o-2024-08-06", "claude-sonnet-4-5-20250929", "gpt-4-0613",
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

    def cost(self, usage: Usage) -> float:
        """Each token counted once: the unified input includes cache reads and writes, the output reasoning."""
        read, write = usage.cache_read_tokens, usage.cache_write_tokens
        plain_input = max(0, usage.input_tokens - read - write)
        reasoning = min(usage.reasoning_tokens, usage.output_tokens)
        total = (plain_input * self.input
                 + read * _or(self.cache_read, self.input)
                 + write * _or(self.cache_write, self.input)
                 + (usage.output_tokens - reasoning) * self.output
                 + reasoning * _or(self.reasoning, self.output))
        return total / PER


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


def _openai(input: float, cached: float, output: float) -> Price:
    return Price(input, output, cache_read=cached)  # OpenAI does not charge for cache writes


def _anthropic(input: float, output: float) -> Price:
    return Price(input, output, cache_read=input / 10, cache_write=input * 1.25)  # 5-minute cache writes


def _gemini(input: float, output: float, cached: float) -> Price:
    return Price(input, output, cache_read=cached)


BUILT_IN: dict[str, Price] = {
    # OpenAI, https://platform.openai.com/docs/pricing
    "gpt-5": _openai(1.25, 0.125, 10.0),
    "gpt-5.1": _openai(1.25, 0.125, 10.0),
    "gpt-5-codex": _openai(1.25, 0.125, 10.0),
    "gpt-5.1-codex": _openai(1.25, 0.125, 10.0),
    "gpt-5-mini": _openai(0.25, 0.025, 2.0),
    "gpt-5-nano": _openai(0.05, 0.005, 0.40),
    "gpt-5-pro": Price(15.0, 120.0),
    "gpt-4.1": _openai(2.0, 0.50, 8.0),
    "gpt-4.1-mini": _openai(0.40, 0.10, 1.60),
    "gpt-4.1-nano": _openai(0.10, 0.025, 0.40),
    "gpt-4o": _openai(2.50, 1.25, 10.0),
    "gpt-4o-mini": _openai(0.15, 0.075, 0.60),
    "chatgpt-4o": Price(5.0, 15.0),
    "o3": _openai(2.0, 0.50, 8.0),
    "o3-pro": Price(20.0, 80.0),
    "o3-mini": _openai(1.10, 0.55, 4.40),
    "o4-mini": _openai(1.10, 0.275, 4.40),
    "o1": _openai(15.0, 7.50, 60.0),
    "o1-mini": _openai(1.10, 0.55, 4.40),
    "o1-pro": Price(150.0, 600.0),
    "gpt-4-turbo": Price(10.0, 30.0),
    "gpt-4-1106": Price(10.0, 30.0),  # GPT-4 Turbo previews
    "gpt-4-0125": Price(10.0, 30.0),
    "gpt-4": Price(30.0, 60.0),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    # Anthropic, https://docs.anthropic.com/en/docs/about-claude/pricing
    "claude-opus-4-6": _anthropic(5.0, 25.0),
    "claude-opus-4-5": _anthropic(5.0, 25.0),
    "claude-opus-4-1": _anthropic(15.0, 75.0),
    "claude-opus-4": _anthropic(15.0, 75.0),
    "claude-opus-4-0": _anthropic(15.0, 75.0),
    "claude-sonnet-4-5": _anthropic(3.0, 15.0),
    "claude-sonnet-4": _anthropic(3.0, 15.0),
    "claude-sonnet-4-0": _anthropic(3.0, 15.0),
    "claude-3-7-sonnet": _anthropic(3.0, 15.0),
    "claude-3-5-sonnet": _anthropic(3.0, 15.0),
    "claude-haiku-4-5": _anthropic(1.0, 5.0),
    "claude-3-5-haiku": _anthropic(0.80, 4.0),
    "claude-3-haiku": _anthropic(0.25, 1.25),
    "claude-3-opus": _anthropic(15.0, 75.0),
    # Gemini (paid tier, text), https://ai.google.dev/gemini-api/docs/pricing; thinking is billed as output
    "gemini-3-pro": _gemini(2.0, 12.0, 0.20),
    "gemini-2.5-pro": _gemini(1.25, 10.0, 0.125),
    "gemini-2.5-flash": _gemini(0.30, 2.50, 0.03),
    "gemini-2.5-flash-lite": _gemini(0.10, 0.40, 0.01),
    "gemini-2.0-flash": _gemini(0.10, 0.40, 0.025),
    "gemini-2.0-flash-lite": Price(0.075, 0.30),
}


class PriceTable:
    """The price of a model: the config's entries first (an exact name, else the matching glob with the most
    literal characters, the first written on a tie), then the built-in table (the name, else the name without its
    snapshot suffix). Lookups are cached: a request costs one dict lookup."""

    def __init__(self, overrides: dict[str, Price] | None = None, built_in: dict[str, Price] = BUILT_IN) -> None:
        self.overrides = dict(overrides or {})
        self.built_in = built_in
        self._globs = sorted(
            (pattern for pattern in self.overrides if WILDCARDS.search(pattern)),
            key=lambda p: -len(WILDCARDS.sub("", p)),  # sorted() is stable: ties keep the order written
        )
        self._cache: dict[str, Price | None] = {}

    @classmethod
    def from_config(cls, prices: dict[str, PriceConfig]) -> PriceTable:
        return cls({pattern: entry.price() for pattern, entry in prices.items()})

    def price(self, model: str) -> Price | None:
        if model in self._cache:
            return self._cache[model]
        found = self._find(model)
        if len(self._cache) < 4096:  # model names come from clients: bounded
            self._cache[model] = found
        return found

    def _find(self, model: str) -> Price | None:
        if model in self.overrides:
            return self.overrides[model]
        for pattern in self._globs:
            if fnmatchcase(model, pattern):
                return self.overrides[pattern]
        name = model.removeprefix("models/")
        while name:
            if name in self.built_in:
                return self.built_in[name]
            shorter = SNAPSHOT_SUFFIX.sub("", name)
            if shorter == name:
                return None
            name = shorter
        return None

    def cost(self, model: str, usage: Usage) -> float | None:
        """The answer's cost in USD, None when the model's price is unknown."""
        price = self.price(model)
        if price is None:
            return None
        cost = price.cost(usage)
        return round(cost, 10) if math.isfinite(cost) else None

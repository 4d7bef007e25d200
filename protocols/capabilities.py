"""What a model accepts, so a translated request asks only for what its target model takes.

Each vendor family's table is its own (protocols/families/<name>/models.py); here are its columns and the fitting
(a model's row is looked up by its provider's family: protocols/registry.py, `model_capabilities`). Pure data: the
engine (rewrite/routing/capabilities.py) adds the config's overrides and says when a model is not in the table.
Sources: the vendors' documentation and SDKs as of 2026-11 (docs/capabilities.md).

`fit` adjusts a unified request to a model's capabilities before a translator writes it, and says in words what
it changed (the flow's steps show it); the translators then shape thinking the way `thinking` says.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from protocols.unified import ReasoningConfig, Request

SAMPLING = ("temperature", "top_p", "top_k")
# Effort levels from least to most; "none" (thinking off) is not a level a model lists: see `thinking_off`.
EFFORTS = ("minimal", "low", "medium", "high", "xhigh", "max")
EFFORT_NONE = "none"
# How a model is told how much to think.
THINKING_NONE = "none"  # it does not reason: no effort or budget is sent
THINKING_BUDGET = "budget"  # a token budget (Anthropic `budget_tokens`, Gemini `thinkingBudget`)
THINKING_ADAPTIVE = "adaptive"  # Anthropic `thinking: {type: adaptive}` with `output_config.effort`
THINKING_LEVEL = "level"  # an effort level (OpenAI `reasoning_effort`, Gemini `thinkingLevel`)
THINKING_STYLES = (THINKING_NONE, THINKING_BUDGET, THINKING_ADAPTIVE, THINKING_LEVEL)
# Effort <-> thinking budget (tokens), for targets that take the other. Lossy both ways.
EFFORT_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 32768, "max": 65536}
ANTHROPIC_2023 = "2023-06-01"
ANTHROPIC_2026 = "2026-10-21"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one model accepts. `known` is False for the conservative guess made for a model not in the table."""

    sampling: frozenset[str] = frozenset(SAMPLING)  # which of temperature, top_p, top_k it takes
    thinking: str = THINKING_NONE
    efforts: tuple[str, ...] = ()  # the effort levels it takes, in EFFORTS order
    thinking_off: bool = True  # thinking can be turned off (effort "none", thinking disabled, budget 0)
    prefill: bool = False  # a conversation may end in an assistant (model) turn, which the model continues
    prefill_strip: bool = False  # that turn must not end in whitespace (Anthropic answers 400): strip it
    prefill_marker: str | None = None  # a flag set true on that turn (Mistral and DeepSeek: "prefix")
    prefill_echo: bool = False  # the output repeats that turn before continuing it (Mistral)
    max_output_tokens: int | None = None
    anthropic_version: str | None = None  # the `anthropic-version` header to send (Anthropic models)
    mid_system: bool = False  # system messages inside the conversation are taken where they stand
    known: bool = True

    @classmethod
    def of(cls, **fields: Any) -> Capabilities:
        """A row of a family's table (protocols/families/): `sampling` as any sequence."""
        if "sampling" in fields:
            fields["sampling"] = frozenset(fields["sampling"])
        return cls(**fields)


LOW_HIGH = ("low", "medium", "high")
LOW_XHIGH = (*LOW_HIGH, "xhigh")
LOW_MAX = (*LOW_XHIGH, "max")
MINIMAL_HIGH = ("minimal", *LOW_HIGH)
# What a model of any OpenAI-compatible server is least likely to refuse: sampling, which they take, and the three
# common efforts. A model no table names at a family without a guess of its own gets it.
COMPATIBLE: dict[str, Any] = dict(thinking=THINKING_LEVEL, efforts=LOW_HIGH, mid_system=True)
GUESS = Capabilities.of(**COMPATIBLE, known=False)


def matching[T](table: tuple[tuple[tuple[str, ...], T], ...], model: str) -> T | None:
    """The value of the first row of `table` a glob of which matches `model` (its "models/" prefix aside)."""
    name = model.removeprefix("models/").lower()
    return next((value for globs, value in table if any(fnmatchcase(name, g) for g in globs)), None)


def overridden(caps: Capabilities, override: dict) -> Capabilities:
    """`caps` with some columns set (a config's `capabilities`): the model then counts as known. A Claude moved to
    API version 2026-10-21 or later takes no sampling parameters (that version refuses them whatever the model)
    unless the override says which it takes."""
    fields = dict(override)
    if "sampling" in fields:
        fields["sampling"] = frozenset(fields["sampling"])
    elif fields.get("anthropic_version", "") >= ANTHROPIC_2026:
        fields["sampling"] = frozenset()
    if "efforts" in fields:
        fields["efforts"] = tuple(e for e in EFFORTS if e in fields["efforts"])
    return dataclasses.replace(caps, **fields, known=True)


def effort_for(config: ReasoningConfig) -> str | None:
    """An effort level for a target that takes one (the nearest level at or above a budget)."""
    if not config.enabled:
        return EFFORT_NONE
    if config.effort:
        return config.effort
    if config.budget is None:
        return None
    for effort in ("low", "medium", "high", "xhigh"):
        if config.budget <= EFFORT_BUDGETS[effort]:
            return effort
    return "max"


def accepted_efforts(caps: Capabilities, wire: tuple[str, ...] = EFFORTS) -> tuple[str, ...]:
    """The efforts a model takes that its protocol can say (`wire`: the target translator's `efforts`, e.g.
    Anthropic's `output_config.effort` has no `minimal`); all that the protocol can say when the model lists none
    of them (a model the table leaves open, or an override listing another protocol's levels)."""
    return tuple(e for e in caps.efforts if e in wire) or wire


def nearest_effort(effort: str, accepted: tuple[str, ...]) -> str:
    """The accepted effort closest to `effort` (a tie goes to the higher one); `effort` if it is accepted, or
    unknown to the ladder, or nothing is listed."""
    if effort in accepted or effort not in EFFORTS or not accepted:
        return effort
    rank = EFFORTS.index(effort)
    return min(accepted, key=lambda e: (abs(EFFORTS.index(e) - rank), -EFFORTS.index(e)))


def _fit_reasoning(reasoning: ReasoningConfig, caps: Capabilities, wire: tuple[str, ...], model: str,
                   notes: list[str]) -> ReasoningConfig | None:
    off = not reasoning.enabled or reasoning.effort == EFFORT_NONE
    if caps.thinking == THINKING_NONE:
        if not off:
            notes.append(f"reasoning dropped: {model} does not reason")
        return None
    if off:
        if caps.thinking_off:
            return reasoning
        lowest = accepted_efforts(caps, wire)[0]
        notes.append(f"thinking cannot be turned off on {model}: sent at effort {lowest}")
        return ReasoningConfig(effort=lowest, include_thoughts=reasoning.include_thoughts)
    if caps.thinking == THINKING_BUDGET and reasoning.effort is None:
        return reasoning  # a budget for a budget: as it is
    effort = effort_for(reasoning)
    if effort is None or caps.thinking == THINKING_BUDGET and not caps.efforts:
        return reasoning
    fitted = nearest_effort(effort, accepted_efforts(caps, wire))
    if fitted != effort:
        notes.append(f"effort {effort} sent as {fitted}, the nearest {model} accepts")
    return dataclasses.replace(reasoning, effort=fitted)


def fit(request: Request, caps: Capabilities, wire: tuple[str, ...] = EFFORTS) -> tuple[Request, list[str]]:
    """`request` (a copy, if anything changes) as `caps` lets it go to `request.model` in a protocol whose effort
    levels are `wire`, and what changed, in words: sampling parameters the model refuses are dropped, an effort it
    lacks becomes the nearest it takes (and its protocol can say), thinking it cannot turn off stays on at the
    lowest effort, max_tokens is held to its maximum output."""
    notes: list[str] = []
    changes: dict = {}
    model = request.model or "the model"
    for name in SAMPLING:
        if getattr(request, name) is not None and name not in caps.sampling:
            changes[name] = None
            notes.append(f"{name} dropped: {model} does not accept it")
    if isinstance(request.top_k, float) and "top_k" not in changes and request.top_k.is_integer():
        changes["top_k"] = int(request.top_k)  # Gemini CLI sends 64.0; Anthropic wants an integer
    if request.reasoning is not None:
        reasoning = _fit_reasoning(request.reasoning, caps, wire, model, notes)
        if reasoning is not request.reasoning:
            changes["reasoning"] = reasoning
    limit = caps.max_output_tokens
    if limit is not None and request.max_tokens is not None and request.max_tokens > limit:
        changes["max_tokens"] = limit
        notes.append(f"max_tokens {request.max_tokens} lowered to {limit}, the most {model} writes")
    return (dataclasses.replace(request, **changes) if changes else request), notes

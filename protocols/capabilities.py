"""What each vendor's models accept, so a translated request asks only for what its target model takes.

Pure data and lookups: the engine (rewrite/routing/capabilities.py) adds the config's overrides and says when a model is
not in the table. Sources: the vendors' documentation and SDKs as of 2026-11 (docs/capabilities.md).

`fit` adjusts a unified request to a model's capabilities before a translator writes it, and says in words what
it changed (the flow's steps show it); the translators then shape thinking the way `thinking` says.
"""

from __future__ import annotations

import dataclasses
import re
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


def _caps(**fields: Any) -> Capabilities:
    if "sampling" in fields:
        fields["sampling"] = frozenset(fields["sampling"])
    return Capabilities(**fields)


LOW_HIGH = ("low", "medium", "high")
LOW_XHIGH = (*LOW_HIGH, "xhigh")
LOW_MAX = (*LOW_XHIGH, "max")
MINIMAL_HIGH = ("minimal", *LOW_HIGH)
_ADAPTIVE = dict(sampling=(), thinking=THINKING_ADAPTIVE, efforts=LOW_MAX,
                 max_output_tokens=128_000, anthropic_version=ANTHROPIC_2026)
_CLAUDE_BUDGET = dict(thinking=THINKING_BUDGET, anthropic_version=ANTHROPIC_2023)
_CLAUDE_PREFILL = dict(_CLAUDE_BUDGET, prefill=True, prefill_strip=True)
_OPENAI_REASONING = dict(sampling=(), thinking=THINKING_LEVEL, mid_system=True, max_output_tokens=128_000)
# An OpenAI-compatible vendor's own models: what an unknown openai-kind model gets, plus what is known of prefill.
_OPENAI_COMPATIBLE = dict(thinking=THINKING_LEVEL, efforts=LOW_HIGH, mid_system=True)
_GEMINI_3 = dict(thinking=THINKING_LEVEL, thinking_off=False, max_output_tokens=65_536)

# (family, model globs, capabilities): the first entry whose glob matches wins, so narrower globs come first.
BUILT_IN: tuple[tuple[str, tuple[str, ...], Capabilities], ...] = (
    ("anthropic", ("claude-fable-5", "claude-fable-5-1*", "claude-fable-5-20*", "claude-mythos-5",
                   "claude-mythos-5-1*", "claude-mythos-5-20*"),
     _caps(**_ADAPTIVE, thinking_off=False, mid_system=True)),
    ("anthropic", ("claude-opus-5", "claude-opus-5-20*", "claude-opus-4-8*"), _caps(**_ADAPTIVE, mid_system=True)),
    ("anthropic", ("claude-sonnet-5", "claude-sonnet-5-20*", "claude-opus-4-7*"), _caps(**_ADAPTIVE)),
    ("anthropic", ("claude-opus-4-6*", "claude-sonnet-4-6*"),
     _caps(**{**_ADAPTIVE, "efforts": (*LOW_HIGH, "max"), "sampling": SAMPLING,
              "anthropic_version": ANTHROPIC_2023})),
    ("anthropic", ("claude-haiku-4-5*",), _caps(**_CLAUDE_PREFILL, max_output_tokens=64_000)),
    ("anthropic", ("claude-opus-4-5*",),
     _caps(**_CLAUDE_PREFILL, efforts=LOW_HIGH, max_output_tokens=64_000)),
    ("anthropic", ("claude-sonnet-4-5*", "claude-sonnet-4-2025*", "claude-3-7-sonnet*"),
     _caps(**_CLAUDE_PREFILL, max_output_tokens=64_000)),
    ("anthropic", ("claude-opus-4-1*", "claude-opus-4-2025*"),
     _caps(**_CLAUDE_PREFILL, max_output_tokens=32_000)),
    ("openai", ("gpt-6*", "gpt-5.6*"), _caps(**_OPENAI_REASONING, efforts=LOW_MAX)),
    ("openai", ("gpt-5.2*", "gpt-5.4*", "gpt-5.5*"), _caps(**_OPENAI_REASONING, efforts=LOW_XHIGH)),
    ("openai", ("gpt-5.3-codex*",), _caps(**_OPENAI_REASONING, efforts=LOW_XHIGH, thinking_off=False)),
    ("openai", ("gpt-5.1*",), _caps(**_OPENAI_REASONING, efforts=LOW_HIGH)),
    ("openai", ("gpt-5*",), _caps(**_OPENAI_REASONING, efforts=MINIMAL_HIGH, thinking_off=False)),
    ("openai", ("o1*", "o3*", "o4*"),
     _caps(**{**_OPENAI_REASONING, "max_output_tokens": 100_000}, efforts=LOW_HIGH, thinking_off=False)),
    ("openai", ("gpt-4.1*",), _caps(mid_system=True, max_output_tokens=32_768)),
    ("openai", ("gpt-4o*",), _caps(mid_system=True, max_output_tokens=16_384)),
    ("gemini", ("gemini-2.5-pro*",), _caps(thinking=THINKING_BUDGET, thinking_off=False, prefill=True,
                                           max_output_tokens=65_536)),
    ("gemini", ("gemini-2.5-flash*",), _caps(thinking=THINKING_BUDGET, prefill=True, max_output_tokens=65_536)),
    ("openai", ("mistral-*", "magistral-*", "codestral-*", "devstral-*", "ministral-*", "pixtral-*", "open-mistral-*"),
     _caps(**_OPENAI_COMPATIBLE, prefill=True, prefill_marker="prefix", prefill_echo=True)),
    ("openai", ("deepseek-*",), _caps(**_OPENAI_COMPATIBLE, prefill=True, prefill_marker="prefix")),  # /beta base URL
    ("gemini", ("gemini-3-pro*",), _caps(**_GEMINI_3, efforts=("low", "high"), prefill=True)),
    ("gemini", ("gemini-3.1-pro*",), _caps(**_GEMINI_3, efforts=LOW_HIGH, prefill=True)),
    # 3.5 Flash-Lite and 3.6 Flash answer a trailing model turn with 400; earlier Gemini continues it word for word.
    ("gemini", ("gemini-3.5-flash-lite*", "gemini-3.6-flash*"), _caps(**_GEMINI_3, efforts=MINIMAL_HIGH)),
    ("gemini", ("gemini-3-flash*", "gemini-3.1-flash*", "gemini-3.5-flash*"),
     _caps(**_GEMINI_3, efforts=MINIMAL_HIGH, prefill=True)),
)

# For a model not in the table, per family: what is least likely to be refused. Claude: no sampling (current
# models refuse it), adaptive thinking at the three efforts every adaptive model takes, only when asked for.
# OpenAI-kind (any OpenAI-compatible server): sampling, which they take, and the three common efforts. Gemini:
# sampling (every Gemini model takes it) and the two thinking levels every Gemini 3 model takes.
UNKNOWN: dict[str, Capabilities] = {
    "anthropic": _caps(sampling=(), thinking=THINKING_ADAPTIVE, efforts=LOW_HIGH,
                       anthropic_version=ANTHROPIC_2023, known=False),
    "openai": _caps(**_OPENAI_COMPATIBLE, known=False),
    "gemini": _caps(thinking=THINKING_LEVEL, efforts=("low", "high"), thinking_off=False, known=False),
    # Amazon Bedrock's other vendors' models: the sampling Converse's inferenceConfig carries, no reasoning field.
    "bedrock": _caps(sampling=("temperature", "top_p"), known=False),
}

BEDROCK = "bedrock"
# Bedrock model ids: `[geography.]vendor.model` (an inference profile or a foundation model), or an ARN ending in one.
BEDROCK_MODEL = re.compile(r"^(?:(?:us|eu|apac|global|jp|au|ca|us-gov)\.)?(?P<vendor>[a-z0-9-]+)\.(?P<model>.+)$")
BEDROCK_VENDORS = {"anthropic": "anthropic"}


def vendor_model(family: str, model: str) -> tuple[str, str]:
    """The family and name the table knows a model by: a Bedrock id of a vendor the table has is that vendor's model
    (`us.anthropic.claude-sonnet-4-5-20250929-v1:0` is Anthropic's `claude-sonnet-4-5-20250929-v1:0`, also at the
    end of an ARN); Gemini's "models/" prefix is ignored."""
    name = model.removeprefix("models/").lower()
    if family == BEDROCK:
        match = BEDROCK_MODEL.match(name.rsplit("/", 1)[-1])
        if match is not None and match["vendor"] in BEDROCK_VENDORS:
            return BEDROCK_VENDORS[match["vendor"]], match["model"]
    return family, name


def lookup(family: str, model: str) -> Capabilities:
    """The built-in capabilities of `model` at a provider of `family`; the family's conservative guess (with
    `known` False) for a model not in the table."""
    family, name = vendor_model(family, model)
    for fam, globs, caps in BUILT_IN:
        if fam == family and any(fnmatchcase(name, g) for g in globs):
            return caps
    return UNKNOWN.get(family, UNKNOWN["openai"])


# The shortest prompt, in tokens, each model caches: below it nothing is cached, so a conversation gains nothing by
# staying on one key (issue 30). The vendors' figures as of 2026-11 (Anthropic's prompt-caching guide: not monotonic
# across generations; OpenAI: every model that caches; Gemini: implicit caching). First matching glob wins.
CACHE_MINIMUMS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("anthropic", ("claude-opus-5", "claude-opus-5-20*", "claude-fable-5*", "claude-mythos-5*"), 512),
    ("anthropic", ("claude-opus-4-8*", "claude-sonnet-5", "claude-sonnet-5-20*", "claude-sonnet-4*",
                   "claude-opus-4-1*", "claude-opus-4", "claude-opus-4-2025*", "claude-3-7-sonnet*"), 1024),
    ("anthropic", ("claude-opus-4-7*", "claude-mythos-preview*", "claude-3-5-haiku*", "claude-3-haiku*"), 2048),
    ("anthropic", ("claude-opus-4-6*", "claude-opus-4-5*", "claude-haiku-4-5*"), 4096),
    ("openai", ("gpt-*", "o1*", "o3*", "o4*", "chatgpt-*", "codex-*"), 1024),
    ("gemini", ("gemini-2.5-*",), 2048),
    ("gemini", ("gemini-3*", "gemini-4*"), 4096),
)


def cache_minimum(family: str, model: str) -> int | None:
    """The fewest prompt tokens `model` at a provider of `family` caches; None for a model the vendors' tables do
    not name (an OpenAI-compatible vendor's own, a model newer than the table)."""
    family, name = vendor_model(family, model)
    for fam, globs, tokens in CACHE_MINIMUMS:
        if fam == family and any(fnmatchcase(name, g) for g in globs):
            return tokens
    return None


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

"""What Anthropic's models accept (protocols/capabilities.py), and the shortest prompt each caches. Sources: the
documentation and SDKs as of 2026-11 (docs/capabilities.md). First matching glob wins, so narrower globs come
first."""

from __future__ import annotations

from protocols.capabilities import (
    ANTHROPIC_2023,
    ANTHROPIC_2026,
    LOW_HIGH,
    LOW_MAX,
    SAMPLING,
    THINKING_ADAPTIVE,
    THINKING_BUDGET,
    Capabilities,
)

_ADAPTIVE = dict(sampling=(), thinking=THINKING_ADAPTIVE, efforts=LOW_MAX,
                 max_output_tokens=128_000, anthropic_version=ANTHROPIC_2026)
_BUDGET = dict(thinking=THINKING_BUDGET, anthropic_version=ANTHROPIC_2023)
_PREFILL = dict(_BUDGET, prefill=True, prefill_strip=True)
_of = Capabilities.of

MODELS: tuple[tuple[tuple[str, ...], Capabilities], ...] = (
    (("claude-fable-5", "claude-fable-5-1*", "claude-fable-5-20*", "claude-mythos-5", "claude-mythos-5-1*",
      "claude-mythos-5-20*", "claude-opus-5-5*"),
     _of(**_ADAPTIVE, thinking_off=False, mid_system=True)),
    (("claude-opus-5", "claude-opus-5-20*", "claude-opus-4-8*"), _of(**_ADAPTIVE, mid_system=True)),
    (("claude-sonnet-5", "claude-sonnet-5-20*", "claude-opus-4-7*"), _of(**_ADAPTIVE)),
    (("claude-opus-4-6*", "claude-sonnet-4-6*"),
     _of(**{**_ADAPTIVE, "efforts": (*LOW_HIGH, "max"), "sampling": SAMPLING, "anthropic_version": ANTHROPIC_2023})),
    (("claude-haiku-4-5*",), _of(**_PREFILL, max_output_tokens=64_000)),
    (("claude-opus-4-5*",), _of(**_PREFILL, efforts=LOW_HIGH, max_output_tokens=64_000)),
    (("claude-sonnet-4-5*", "claude-sonnet-4-2025*", "claude-3-7-sonnet*"), _of(**_PREFILL, max_output_tokens=64_000)),
    (("claude-opus-4-1*", "claude-opus-4-2025*"), _of(**_PREFILL, max_output_tokens=32_000)),
)

# A model not in the table: no sampling (current models refuse it), adaptive thinking at the three efforts every
# adaptive model takes, only when asked for.
UNKNOWN = _of(sampling=(), thinking=THINKING_ADAPTIVE, efforts=LOW_HIGH, anthropic_version=ANTHROPIC_2023,
              known=False)

# The prompt-caching guide's figures: not monotonic across generations.
CACHE_MINIMUMS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("claude-opus-5", "claude-opus-5-20*", "claude-fable-5*", "claude-mythos-5*"), 512),
    (("claude-opus-4-8*", "claude-sonnet-5", "claude-sonnet-5-20*", "claude-sonnet-4*", "claude-opus-4-1*",
      "claude-opus-4", "claude-opus-4-2025*", "claude-3-7-sonnet*"), 1024),
    (("claude-opus-4-7*", "claude-mythos-preview*", "claude-3-5-haiku*", "claude-3-haiku*"), 2048),
    (("claude-opus-4-6*", "claude-opus-4-5*", "claude-haiku-4-5*"), 4096),
)

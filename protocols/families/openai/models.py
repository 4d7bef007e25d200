"""What OpenAI's models, and the OpenAI-compatible vendors' we know, accept (protocols/capabilities.py), and the
shortest prompt each caches. Sources: the vendors' documentation and SDKs as of 2026-11 (docs/capabilities.md).
First matching glob wins, so narrower globs come first."""

from __future__ import annotations

from protocols.capabilities import (
    COMPATIBLE,
    GUESS,
    LOW_HIGH,
    LOW_MAX,
    LOW_XHIGH,
    MINIMAL_HIGH,
    THINKING_LEVEL,
    Capabilities,
)

_REASONING = dict(sampling=(), thinking=THINKING_LEVEL, mid_system=True, max_output_tokens=128_000)
_of = Capabilities.of

MODELS: tuple[tuple[tuple[str, ...], Capabilities], ...] = (
    (("gpt-6*", "gpt-5.6*"), _of(**_REASONING, efforts=LOW_MAX)),
    (("gpt-5.2*", "gpt-5.4*", "gpt-5.5*"), _of(**_REASONING, efforts=LOW_XHIGH)),
    (("gpt-5.3-codex*",), _of(**_REASONING, efforts=LOW_XHIGH, thinking_off=False)),
    (("gpt-5.1*",), _of(**_REASONING, efforts=LOW_HIGH)),
    (("gpt-5*",), _of(**_REASONING, efforts=MINIMAL_HIGH, thinking_off=False)),
    (("o1*", "o3*", "o4*"), _of(**{**_REASONING, "max_output_tokens": 100_000}, efforts=LOW_HIGH, thinking_off=False)),
    (("gpt-4.1*",), _of(mid_system=True, max_output_tokens=32_768)),
    (("gpt-4o*",), _of(mid_system=True, max_output_tokens=16_384)),
    # An OpenAI-compatible vendor's own models: what an unknown model gets, plus what is known of prefill.
    (("mistral-*", "magistral-*", "codestral-*", "devstral-*", "ministral-*", "pixtral-*", "open-mistral-*"),
     _of(**COMPATIBLE, prefill=True, prefill_marker="prefix", prefill_echo=True)),
    (("deepseek-*",), _of(**COMPATIBLE, prefill=True, prefill_marker="prefix")),  # /beta base URL
)

# A model not in the table (any OpenAI-compatible server's): sampling, which they take, and the three common efforts.
UNKNOWN = GUESS

# Every OpenAI model that caches does from 1024 tokens.
CACHE_MINIMUMS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("gpt-*", "o1*", "o3*", "o4*", "chatgpt-*", "codex-*"), 1024),
)

"""What Gemini's models accept (protocols/capabilities.py), and the shortest prompt each caches (implicit caching).
Sources: the documentation and SDKs as of 2026-11 (docs/capabilities.md). First matching glob wins, so narrower
globs come first."""

from __future__ import annotations

from protocols.capabilities import LOW_HIGH, MINIMAL_HIGH, THINKING_BUDGET, THINKING_LEVEL, Capabilities

_GEMINI_3 = dict(thinking=THINKING_LEVEL, thinking_off=False, max_output_tokens=65_536)
_of = Capabilities.of

MODELS: tuple[tuple[tuple[str, ...], Capabilities], ...] = (
    (("gemini-2.5-pro*",), _of(thinking=THINKING_BUDGET, thinking_off=False, prefill=True, max_output_tokens=65_536)),
    (("gemini-2.5-flash*",), _of(thinking=THINKING_BUDGET, prefill=True, max_output_tokens=65_536)),
    (("gemini-3-pro*",), _of(**_GEMINI_3, efforts=("low", "high"), prefill=True)),
    (("gemini-3.1-pro*",), _of(**_GEMINI_3, efforts=LOW_HIGH, prefill=True)),
    # 3.5 Flash-Lite and 3.6 Flash answer a trailing model turn with 400; earlier Gemini continues it word for word.
    (("gemini-3.5-flash-lite*", "gemini-3.6-flash*"), _of(**_GEMINI_3, efforts=MINIMAL_HIGH)),
    (("gemini-3-flash*", "gemini-3.1-flash*", "gemini-3.5-flash*"),
     _of(**_GEMINI_3, efforts=MINIMAL_HIGH, prefill=True)),
)

# A model not in the table: sampling (every Gemini model takes it) and the two thinking levels every Gemini 3 model
# takes.
UNKNOWN = _of(thinking=THINKING_LEVEL, efforts=("low", "high"), thinking_off=False, known=False)

CACHE_MINIMUMS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("gemini-2.5-*",), 2048),
    (("gemini-3*", "gemini-4*"), 4096),
)

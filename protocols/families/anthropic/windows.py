"""The rate-limit windows an Anthropic answer reports (protocols/windows.py): `anthropic-ratelimit-{requests,tokens,
input-tokens,output-tokens}-{limit,remaining,reset}` on every answer, a success as well as a 429, the reset an
RFC 3339 time (when the limit is whole again). A subscription login's plan windows (`-unified-*`) are its own
dialect's (protocols/logins/claude_login.py).

Quota groups, from Anthropic's rate-limits page: the Opus rate limit is one total across the Claude Opus 4.x models
(4, 4.1, 4.5, 4.6, ...), and the Sonnet 4.x models likewise share one.
"""

from __future__ import annotations

from protocols.windows import QuotaGroups, Window, WindowAnswer, WindowReader, epoch, limit_headers

UNITS = {"requests": "requests", "tokens": "tokens", "input-tokens": "input_tokens", "output-tokens": "output_tokens"}
GROUPS = QuotaGroups((("claude-opus-4", ("claude-opus-4", "claude-opus-4-*", "claude-opus-4.*")),
                      ("claude-sonnet-4", ("claude-sonnet-4", "claude-sonnet-4-*", "claude-sonnet-4.*"))))


def _reset(text: str | None, now: float) -> float | None:
    return epoch(text)


def rate_limits(answer: WindowAnswer, read: tuple[Window, ...]) -> tuple[Window, ...]:
    """The key's request and token windows from the `anthropic-ratelimit-*` headers."""
    return (*read, *limit_headers(answer, lambda unit, part: f"anthropic-ratelimit-{unit}-{part}", UNITS, _reset))


ANTHROPIC_WINDOWS = WindowReader((rate_limits,), GROUPS, heads=("anthropic-ratelimit-",))

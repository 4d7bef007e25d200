"""The rate-limit windows an OpenAI answer reports (protocols/windows.py), for both OpenAI protocols and the
OpenAI-compatible vendors: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` on every answer, a success as
well as a 429, the reset a Go duration (`6m0s`, `1.5s`, `20ms`: the time until the limit is whole again); and
Google's quota errors, as Google's OpenAI-compatible endpoint sends them (protocols/families/google_rpc.py).

Quota groups: a dated snapshot (`gpt-4o-2024-08-06`) shares its alias's limit (`gpt-4o`), as the organization's
limits page lists them; other shared limits vary by organization and are the config's (`quota_groups`).
"""

from __future__ import annotations

import re

from protocols.families.google_rpc import quota_failures
from protocols.families.openai.errors import go_duration
from protocols.windows import QuotaGroups, Window, WindowAnswer, WindowReader, limit_headers

UNITS = {"requests": "requests", "tokens": "tokens"}
DATED = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def _reset(text: str | None, now: float) -> float | None:
    seconds = go_duration(text or "")
    return None if seconds is None else now + seconds


def rate_limits(answer: WindowAnswer, read: tuple[Window, ...]) -> tuple[Window, ...]:
    """The key's request and token windows from the `x-ratelimit-*` headers."""
    return (*read, *limit_headers(answer, lambda unit, part: f"x-ratelimit-{part}-{unit}", UNITS, _reset))


OPENAI_WINDOWS = WindowReader((rate_limits, quota_failures), QuotaGroups(dated=DATED), heads=("x-ratelimit-",))

"""The Copilot CLI's login: a GitHub token on the API host its plan names (`api.githubcopilot.com`,
`api.individual.githubcopilot.com`, business and enterprise hosts), where the protocol follows the path:
`/responses`, `/chat/completions`, `/v1/messages`.

- Answers report the plan's quotas: `x-quota-snapshot-<quota>: ent=300&ov=0.0&ovPerm=false&rem=83.3&rst=<time>`
  (`ent` the entitlement, -1 unlimited; `rem` the percentage left; `rst` the reset, URL-encoded; older clients saw
  `;` between the pairs) and `x-usage-ratelimit-weekly: remaining=6;resetAt=<time>`.
- A used-up plan answers 402 `{"error":{"message":"You have no quota","code":"quota_exceeded"}}`: the premium
  requests are spent; models that take none still serve.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from urllib.parse import unquote

from protocols.vendor_errors import ErrorAnswer, ErrorKind, Quota, VendorError
from protocols.windows import Window, WindowAnswer, epoch, number

SNAPSHOT = "x-quota-snapshot-"
WEEKLY = "x-usage-ratelimit-weekly"
QUOTA_EXCEEDED = "quota_exceeded"
PREMIUM = "premium_interactions"
MAX_WINDOW = 31 * 86400.0
_PAIRS = re.compile(r"[&;]")


def claims(headers: Mapping[str, str]) -> bool:
    """Every request to a Copilot API host carries its GitHub login."""
    return True


def fields(value: str) -> dict[str, str]:
    """`ent=300&rem=83.3&rst=…` (or with `;`) as a dict, values URL-decoded."""
    out = {}
    for pair in _PAIRS.split(value):
        name, sep, text = pair.partition("=")
        if sep:
            out[name.strip()] = unquote(text.strip())
    return out


def windows(answer: WindowAnswer, read: tuple[Window, ...]) -> tuple[Window, ...]:
    """The plan's quotas (an unlimited one, `ent=-1`, is no window) and the weekly rate limit."""
    found: list[Window] = []
    for name, value in answer.headers.items():
        if not name.startswith(SNAPSHOT) or len(name) == len(SNAPSHOT):
            continue
        f = fields(value)
        limit = number(f.get("ent"))  # (-1, unlimited, is no number here)
        left = number(f.get("rem"))
        if limit is None or left is None:
            continue
        left = min(left, 100.0) / 100
        found.append(Window(name[len(SNAPSHOT):], used=1 - left, remaining=round(limit * left, 2), limit=limit,
                            resets_at=_reset(f.get("rst"), answer.now)))
    weekly = fields(answer.headers.get(WEEKLY) or "")
    if (remaining := number(weekly.get("remaining"))) is not None:
        found.append(Window("weekly", remaining=remaining, resets_at=_reset(weekly.get("resetAt"), answer.now)))
    return (*read, *found)


def exhausted(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """A 402 `quota_exceeded`: the plan's premium requests are used up for the model asked, until the quota's
    reset (its snapshot header's, when the answer carries one)."""
    if answer.status != 402 or answer.error is None or answer.error.get("code") != QUOTA_EXCEEDED:
        return error
    snapshot = fields(answer.headers.get(SNAPSHOT + PREMIUM) or "")
    reset = _reset(snapshot.get("rst"), answer.now)
    window = None if reset is None else max(0.0, reset - answer.now)
    return dataclasses.replace(error, kind=ErrorKind.QUOTA, quota=Quota(
        window=window, per_model=True, id=QUOTA_EXCEEDED, what="the plan's premium requests are used up"))


def _reset(text: str | None, now: float) -> float | None:
    when = epoch(text)
    return when if when is not None and when <= now + MAX_WINDOW else None

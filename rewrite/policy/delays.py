"""How long the vendor says a key should wait, read from an error answer's headers and body.

Pure functions of (headers, body, now). Every source is optional and vendor-written: a value that does not parse,
is negative or is not finite is ignored (the next source is read), never an error.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
from datetime import UTC, datetime, timedelta, timezone

MAX_HINT = 86400.0  # a day: no vendor window is longer, and a typo must not rest a key for years
QUOTA_REST = 3600.0  # a quota that names no window: an hour

_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_PROTO_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
# Gemini's quota ids name their window: GenerateRequestsPerDayPerProjectPerModel-FreeTier
_GEMINI_PER_DAY = "PerDay"
# Google resets daily quotas at midnight Pacific time; standard time all year, so in summer the key is back an
# hour late, never early.
_PACIFIC = timezone(timedelta(hours=-8))


def _finite(value: float) -> float | None:
    return min(value, MAX_HINT) if math.isfinite(value) and value >= 0 else None


def seconds(text: str) -> float | None:
    """A delay written as a number of seconds (`7`, `1.5`)."""
    try:
        return _finite(float(text.strip()))
    except (ValueError, AttributeError):
        return None


def http_date(text: str, now: float) -> float | None:
    """Seconds from `now` (epoch) until an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`)."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _finite(max(0.0, when.timestamp() - now))


def go_duration(text: str) -> float | None:
    """OpenAI's reset headers: Go durations like `6m0s`, `1.5s`, `20ms`, `1h2m3.5s`."""
    text = text.strip()
    if not text:
        return None
    total, pos = 0.0, 0
    for m in _GO_PART.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _GO_UNITS[m.group(2)]
        pos = m.end()
    return _finite(total) if pos == len(text) else None


def rfc3339(text: str, now: float) -> float | None:
    """Seconds from `now` until an RFC 3339 time (Anthropic's `2025-01-01T12:00:30Z`)."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if when.tzinfo is None:
        return None
    return _finite(max(0.0, when.timestamp() - now))


def _exhausted_first(resets: dict[str, float], remaining: dict[str, str]) -> float | None:
    """The reset of the limit that ran out (remaining 0); when none says so, the latest reset."""
    if not resets:
        return None
    spent = [v for name, v in resets.items() if remaining.get(name, "").strip() == "0"]
    return max(spent or resets.values())


def vendor_reset(h: dict[str, str], now: float) -> float | None:
    """OpenAI's `x-ratelimit-reset-{requests,tokens}` and Anthropic's `anthropic-ratelimit-*-reset`."""
    resets: dict[str, float] = {}
    remaining: dict[str, str] = {}
    for name, value in h.items():
        if name.startswith("x-ratelimit-reset-"):
            kind, parse = name[len("x-ratelimit-reset-"):], go_duration(value)
        elif name.startswith("anthropic-ratelimit-") and name.endswith("-reset"):
            kind, parse = name[len("anthropic-ratelimit-"):-len("-reset")], rfc3339(value, now)
        elif name.startswith("x-ratelimit-remaining-"):
            remaining[name[len("x-ratelimit-remaining-"):]] = value
            continue
        elif name.startswith("anthropic-ratelimit-") and name.endswith("-remaining"):
            remaining[name[len("anthropic-ratelimit-"):-len("-remaining")]] = value
            continue
        else:
            continue
        if parse is not None:
            resets[kind] = parse
    return _exhausted_first(resets, remaining)


def _error_details(body: bytes) -> list[dict]:
    """Gemini's `error.details` (the body may also be a one-element JSON array, as its streams send errors)."""
    if not body or b"details" not in body:
        return []
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    if isinstance(doc, list) and doc:
        doc = doc[0]
    error = doc.get("error") if isinstance(doc, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def gemini_retry_delay(body: bytes) -> float | None:
    """`RetryInfo.retryDelay` (a protobuf duration: `37s`, `1.5s`) from a Gemini error body."""
    for d in _error_details(body):
        delay = d.get("retryDelay")
        if (str(d.get("@type", "")).endswith("RetryInfo") and isinstance(delay, str)
                and (m := _PROTO_DURATION.match(delay.strip()))):
            return _finite(float(m.group(1)))
    return None


def hinted(headers: list[tuple[str, str]], body: bytes, now: float) -> float | None:
    """The vendor's delay, from the first source that gives one: retry-after-ms, retry-after (seconds or HTTP date),
    the vendor reset headers, Gemini's RetryInfo. None when the answer names no delay."""
    h = {}
    for name, value in headers:
        if isinstance(name, str) and isinstance(value, str):
            h[name.lower()] = value
    if (ms := seconds(h.get("retry-after-ms", ""))) is not None:
        return min(ms / 1000, MAX_HINT)
    if "retry-after" in h:
        v = h["retry-after"]
        if (s := seconds(v)) is not None or (s := http_date(v, now)) is not None:
            return s
    if (reset := vendor_reset(h, now)) is not None:
        return reset
    return gemini_retry_delay(body)


def gemini_quota(body: bytes) -> tuple[bool, bool]:
    """(a per-day quota, limited per model) from a Gemini QuotaFailure."""
    per_day = per_model = False
    for d in _error_details(body):
        if not str(d.get("@type", "")).endswith("QuotaFailure") or not isinstance(d.get("violations"), list):
            continue
        for v in d["violations"]:
            if not isinstance(v, dict):
                continue
            quota_id = str(v.get("quotaId", ""))
            per_day = per_day or _GEMINI_PER_DAY in quota_id
            dims = v.get("quotaDimensions")
            per_model = per_model or "PerModel" in quota_id or (isinstance(dims, dict) and "model" in dims)
    return per_day, per_model


def until_pacific_midnight(now: float) -> float:
    """Seconds until Google's daily quotas reset."""
    local = datetime.fromtimestamp(now, _PACIFIC)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp() - now

"""What a Gemini error answer means (protocols/vendor_errors.py): Google's RPC error details and Gemini's refusals
of request parameters.

- `google.rpc.RetryInfo.retryDelay` (a protobuf duration: `37s`, `1.5s`) is the delay.
- A `google.rpc.QuotaFailure` whose quota id names a day (`GenerateRequestsPerDayPerProjectPerModel-FreeTier`) is a
  daily quota, spent until Google's midnight (Pacific time); it is the model's when its id or dimensions say so.
- A 400 whose `google.rpc.ErrorInfo` reason is `API_KEY_INVALID` ("API key not valid. Please pass a valid API key.")
  refuses the key, not the request: Google answers a bad key with 400, where other vendors say 401.
- A 403 "CachedContent not found (or permission denied)" names an explicit cache the key's project does not hold
  (another project made it, or it expired): the request's state, not a refused key.
- A 400 `INVALID_ARGUMENT` names refused fields: "Invalid JSON payload received. Unknown name \"topK\" at
  'generation_config': Cannot find field." (one such sentence per field), or "Thinking level is not supported for
  this model."
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone

from protocols.refused_params import camel
from protocols.vendor_errors import (
    ErrorAnswer,
    ErrorKind,
    ErrorReader,
    Quota,
    VendorError,
    error_message,
    finite,
    foreign_state,
    refused_by,
)

_PROTO_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
PER_DAY = "PerDay"  # Gemini's quota ids name their window
# Google resets daily quotas at midnight Pacific time; standard time all year, so in summer the key is back an
# hour late, never early.
PACIFIC = timezone(timedelta(hours=-8))
QUOTA_STATUS = 429
BAD_KEY_REASON = "API_KEY_INVALID"
CACHE_NOT_HELD = foreign_state(403, [b"CachedContent not found"])

UNKNOWN_NAME = re.compile(r"""Unknown name \\?"(\w+)\\?"(?: at '([^']*)')?""")
THINKING_LEVEL_REFUSED = re.compile(r"^Thinking level is not supported for this model", re.IGNORECASE)
CONFIG = "generationConfig"
THINKING_LEVEL = f"{CONFIG}.thinkingConfig.thinkingLevel"
ESSENTIAL = frozenset({"contents", "systemInstruction", "tools", "toolConfig", "cachedContent"})


def details(answer: ErrorAnswer) -> list[dict]:
    """The error's `details` (Google's RPC error details)."""
    found = answer.error.get("details") if answer.error is not None else None
    return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []


def bad_key(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """Google's 400 for a key it does not know: the key's fault, as a 401 is."""
    if any(str(d.get("@type", "")).endswith("ErrorInfo") and d.get("reason") == BAD_KEY_REASON
           for d in details(answer)):
        return dataclasses.replace(error, kind=ErrorKind.BAD_KEY)
    return error


def retry_info(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """`RetryInfo.retryDelay`, when nothing before named a delay."""
    if error.delay is not None:
        return error
    for d in details(answer):
        delay = d.get("retryDelay")
        if (str(d.get("@type", "")).endswith("RetryInfo") and isinstance(delay, str)
                and (m := _PROTO_DURATION.match(delay.strip()))):
            return dataclasses.replace(error, delay=finite(float(m.group(1))))
    return error


def daily_quota(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """A 429 for a per-day quota: spent until Google's midnight, for the model when the quota is per model."""
    if answer.status != QUOTA_STATUS:
        return error
    per_day = per_model = False
    quota_id = ""
    for d in details(answer):
        if not str(d.get("@type", "")).endswith("QuotaFailure") or not isinstance(d.get("violations"), list):
            continue
        for v in d["violations"]:
            if not isinstance(v, dict):
                continue
            named = str(v.get("quotaId", ""))
            if PER_DAY in named:
                per_day, quota_id = True, quota_id or named
            dims = v.get("quotaDimensions")
            per_model = per_model or "PerModel" in named or (isinstance(dims, dict) and "model" in dims)
    if not per_day and PER_DAY.encode() not in answer.body:
        return error
    quota = Quota(until_pacific_midnight(answer.now), per_model, quota_id or PER_DAY, "daily quota spent")
    return dataclasses.replace(error, kind=ErrorKind.QUOTA, quota=quota)


def until_pacific_midnight(now: float) -> float:
    """Seconds until Google's daily quotas reset."""
    local = datetime.fromtimestamp(now, PACIFIC)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp() - now


def _refused(error: dict) -> list[str]:
    if error.get("status") != "INVALID_ARGUMENT":
        return []
    message = error_message(error)
    if THINKING_LEVEL_REFUSED.match(message):
        return [THINKING_LEVEL]
    return [".".join([*map(camel, where.split("."))] + [name]) if where else name
            for name, where in UNKNOWN_NAME.findall(message)]


# Google's RPC details, as its OpenAI-compatible endpoint sends them too.
GOOGLE_RPC = (retry_info, daily_quota)
GEMINI_ERRORS = ErrorReader((bad_key, CACHE_NOT_HELD, *GOOGLE_RPC, refused_by(_refused)), essential=ESSENTIAL,
                            holders=(CONFIG,))

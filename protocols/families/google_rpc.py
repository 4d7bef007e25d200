"""Google's RPC error details (`error.details`), as the Gemini API sends them and Google's OpenAI-compatible
endpoint too (`[{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [...]}}]`): read here for both
families' error and window readers (protocols/vendor_errors.py, protocols/windows.py).

- `google.rpc.RetryInfo.retryDelay` (a protobuf duration: `37s`, `1.5s`) is the delay.
- A `google.rpc.QuotaFailure` whose quota id names a day (`GenerateRequestsPerDayPerProjectPerModel-FreeTier`) is a
  daily quota, spent until Google's midnight (Pacific time); it is the model's when its id or dimensions say so.
- A 400 whose `google.rpc.ErrorInfo` reason is `API_KEY_INVALID` ("API key not valid. Please pass a valid API key.")
  refuses the key, not the request: Google answers a bad key with 400, where other vendors say 401.
- The windows of a 429 `RESOURCE_EXHAUSTED`: its `QuotaFailure` names each quota spent: its id (`GenerateRequestsPer
  MinutePerProjectPerModel-FreeTier`, `GenerateContentInputTokensPerModelPerDay-FreeTier`), its metric (what it
  counts: `generativelanguage.googleapis.com/generate_content_free_tier_requests`, `..._input_token_count`), its
  dimensions (`{"location": "global", "model": "gemini-2.5-flash"}`) and its limit (`quotaValue`). Each is a window
  used up until `RetryInfo.retryDelay` from now, a daily one until Google's midnight.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone

from protocols.vendor_errors import ErrorAnswer, ErrorKind, Quota, VendorError, error_object, finite
from protocols.windows import Window, WindowAnswer, WindowStatus, number

_PROTO_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
PER_DAY = "PerDay"  # Google's quota ids name their window
# Google resets daily quotas at midnight Pacific time; standard time all year, so in summer the key is back an
# hour late, never early.
PACIFIC = timezone(timedelta(hours=-8))
QUOTA_STATUS = 429
BAD_KEY_REASON = "API_KEY_INVALID"


def details(answer: ErrorAnswer) -> list[dict]:
    """The error's `details` (Google's RPC error details)."""
    found = answer.error.get("details") if answer.error is not None else None
    return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []


def _of_type(detail: dict, name: str) -> bool:
    return str(detail.get("@type", "")).endswith(name)


def bad_key(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """Google's 400 for a key it does not know: the key's fault, as a 401 is."""
    if any(_of_type(d, "ErrorInfo") and d.get("reason") == BAD_KEY_REASON for d in details(answer)):
        return dataclasses.replace(error, kind=ErrorKind.BAD_KEY)
    return error


def retry_info(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """`RetryInfo.retryDelay`, when nothing before named a delay."""
    if error.delay is not None:
        return error
    for d in details(answer):
        delay = d.get("retryDelay")
        if _of_type(d, "RetryInfo") and isinstance(delay, str) and (m := _PROTO_DURATION.match(delay.strip())):
            return dataclasses.replace(error, delay=finite(float(m.group(1))))
    return error


def _violations(answer: ErrorAnswer) -> list[dict]:
    """The violations of the error's `QuotaFailure` details."""
    return [v for d in details(answer) if _of_type(d, "QuotaFailure") and isinstance(d.get("violations"), list)
            for v in d["violations"] if isinstance(v, dict)]


def daily_quota(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """A 429 for a per-day quota: spent until Google's midnight, for the model when the quota is per model."""
    if answer.status != QUOTA_STATUS:
        return error
    per_day = per_model = False
    quota_id = ""
    for v in _violations(answer):
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


# What an error reader reads of Google's RPC details, in the Gemini API's answers and its OpenAI-compatible ones.
RPC_ERRORS = (retry_info, daily_quota)


def unit_of(metric: str) -> str:
    """What a quota metric counts (requests unless it names tokens)."""
    metric = metric.lower()
    if "token" not in metric:
        return "requests"
    return "input_tokens" if "input" in metric else "output_tokens" if "output" in metric else "tokens"


def quota_failures(answer: WindowAnswer, read: tuple[Window, ...]) -> tuple[Window, ...]:
    """Each quota a 429's `QuotaFailure` names, used up until it refills (a window reader's dialect)."""
    if answer.status != QUOTA_STATUS:
        return read
    error = ErrorAnswer(answer.status, answer.headers, answer.body, error_object(answer.body), answer.now)
    if error.error is None:
        return read
    delay = retry_info(error, VendorError(answer.status, ErrorKind.RATE_LIMITED)).delay
    found = []
    for v in _violations(error):
        name, dims = str(v.get("quotaId") or v.get("quotaMetric") or "quota"), v.get("quotaDimensions")
        model = dims.get("model") if isinstance(dims, dict) and isinstance(dims.get("model"), str) else None
        wait = until_pacific_midnight(answer.now) if PER_DAY in name else delay
        found.append(Window(name, remaining=0.0, limit=number(str(v.get("quotaValue", ""))),
                            resets_at=None if wait is None else answer.now + wait,
                            status=WindowStatus.EXHAUSTED, unit=unit_of(str(v.get("quotaMetric", ""))),
                            model=model))
    return (*read, *found)

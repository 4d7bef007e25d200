"""The quota windows a Gemini answer reports (protocols/windows.py). Gemini sends no rate-limit headers on a
success (python-genai#1721 asks for them): what it says of a key's quotas is in its quota errors, a 429
`RESOURCE_EXHAUSTED` whose `google.rpc.QuotaFailure` names each quota spent: its id (`GenerateRequestsPerMinute
PerProjectPerModel-FreeTier`, `GenerateContentInputTokensPerModelPerDay-FreeTier`), its metric (what it counts:
`generativelanguage.googleapis.com/generate_content_free_tier_requests`, `..._input_token_count`), its dimensions
(`{"location": "global", "model": "gemini-2.5-flash"}`) and its limit (`quotaValue`). Each is a window used up
until `RetryInfo.retryDelay` from now, a daily one until Google's midnight (Pacific time).

Quota groups: Gemini's quotas are per model (the quota's `model` dimension): no two models share one.
"""

from __future__ import annotations

from protocols.gemini.errors import PER_DAY, QUOTA_STATUS, details, retry_info, until_pacific_midnight
from protocols.vendor_errors import ErrorAnswer, ErrorKind, VendorError, error_object
from protocols.windows import Window, WindowAnswer, WindowReader, WindowStatus, number


def unit_of(metric: str) -> str:
    """What a quota metric counts (requests unless it names tokens)."""
    metric = metric.lower()
    if "token" not in metric:
        return "requests"
    return "input_tokens" if "input" in metric else "output_tokens" if "output" in metric else "tokens"


def quota_failures(answer: WindowAnswer, read: tuple[Window, ...]) -> tuple[Window, ...]:
    """Each quota a 429's `QuotaFailure` names, used up until it refills."""
    if answer.status != QUOTA_STATUS:
        return read
    error = ErrorAnswer(answer.status, answer.headers, answer.body, error_object(answer.body), answer.now)
    if error.error is None:
        return read
    delay = retry_info(error, VendorError(answer.status, ErrorKind.RATE_LIMITED)).delay
    found = []
    for d in details(error):
        if not str(d.get("@type", "")).endswith("QuotaFailure") or not isinstance(d.get("violations"), list):
            continue
        for v in d["violations"]:
            if not isinstance(v, dict):
                continue
            name, dims = str(v.get("quotaId") or v.get("quotaMetric") or "quota"), v.get("quotaDimensions")
            model = dims.get("model") if isinstance(dims, dict) and isinstance(dims.get("model"), str) else None
            wait = until_pacific_midnight(answer.now) if PER_DAY in name else delay
            found.append(Window(name, remaining=0.0, limit=number(str(v.get("quotaValue", ""))),
                                resets_at=None if wait is None else answer.now + wait,
                                status=WindowStatus.EXHAUSTED, unit=unit_of(str(v.get("quotaMetric", ""))),
                                model=model))
    return (*read, *found)


GEMINI_WINDOWS = WindowReader((quota_failures,))

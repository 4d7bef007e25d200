"""Claude Code on a Pro/Max plan: Anthropic Messages whose credential is an OAuth login
(`Authorization: Bearer sk-ant-oat01-…`, the `oauth-2025-04-20` beta) instead of an API key.

- The body is signed: `system[0]` is the billing line `x-anthropic-billing-header: cc_version=…; cc_entrypoint=…;
  cch=…;`, `cch` a hash of the body by which Anthropic recognises Claude Code. A changed body is refused or billed
  as third-party usage: such a body is sent as it came, never recomputed.
- Each answer reports the plan's windows: `anthropic-ratelimit-unified-{5h,7d,…}-utilization` (0..1) and `-reset`
  (Unix seconds), the status of the window that limits now (`-unified-status`: allowed, allowed_warning, rejected),
  its name (`-unified-representative-claim`: five_hour, seven_day, …) and its reset (`-unified-reset`).
- Some weekly windows hold for some models alone (`7d_oi`, `seven_day_overage_included`: Claude Code's per-model
  "Fable limit", sent on that model's answers; the Opus and Sonnet weekly limits): one of them used up leaves the
  plan's other models served (`MODEL_CLAIMS`).
- A used-up plan answers 429 `rate_limit_error` with `-unified-status: rejected` (an `overloaded_error` or a plain
  429 is not exhaustion).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from protocols.vendor_errors import ErrorAnswer, ErrorKind, Quota, VendorError
from protocols.windows import Window, WindowAnswer, WindowStatus, epoch, share

OAUTH_TOKEN = re.compile(r"^\s*bearer\s+sk-ant-oat", re.IGNORECASE)
OAUTH_BETA = "oauth-2025-04-20"
BETA_HEADER = "anthropic-beta"
BILLING_LINE = "x-anthropic-billing-header:"
SIGNATURE = "cch="

UNIFIED = "anthropic-ratelimit-unified-"
UTILIZATION = "-utilization"
# The headers' short names of the windows, as the representative claim names them; another is kept as it is.
CLAIMS = {"5h": "five_hour", "7d": "seven_day", "7d_oi": "seven_day_overage_included", "7d_opus": "seven_day_opus",
          "7d_sonnet": "seven_day_sonnet"}
# The windows that hold for the model asked alone, not for the whole plan.
MODEL_CLAIMS = frozenset({"seven_day_overage_included", "seven_day_opus", "seven_day_sonnet"})
# Extra usage beyond the plan, not a window of it (its status says whether it may be bought, not whether the plan
# serves).
NOT_WINDOWS = frozenset({"overage"})
STATUSES = {"allowed": WindowStatus.ALLOWED, "allowed_warning": WindowStatus.WARNING,
            "rejected": WindowStatus.EXHAUSTED}
MAX_WINDOW = 31 * 86400.0  # no plan window is longer: a later reset is a vendor's mistake


def claims(headers: Mapping[str, str]) -> bool:
    """Whether a request's credential is an OAuth login: an `sk-ant-oat` bearer token, or a bearer token with the
    OAuth beta (an API key goes in x-api-key)."""
    auth = headers.get("authorization") or ""
    if OAUTH_TOKEN.match(auth):
        return True
    betas = {b.strip() for b in (headers.get(BETA_HEADER) or "").split(",")}
    return auth.strip().lower().startswith("bearer ") and OAUTH_BETA in betas


def signed(body: dict) -> bool:
    """Whether the body carries Claude Code's billing line with its hash (`cch=`) in `system[0]`."""
    system = body.get("system")
    first = system[0] if isinstance(system, list) and system else None
    text = first.get("text") if isinstance(first, dict) else None
    return isinstance(text, str) and text.lstrip().startswith(BILLING_LINE) and SIGNATURE in text


def foreign_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers for a target other than the login (an API key of the anthropic provider): without the OAuth beta
    (the credential itself is taken out by the engine)."""
    out = []
    for name, value in headers:
        if name.lower() == BETA_HEADER:
            value = ",".join(b for b in (v.strip() for v in value.split(",")) if b and b != OAUTH_BETA)
            if not value:
                continue
        out.append((name, value))
    return out


def windows(answer: WindowAnswer, read: tuple[Window, ...]) -> tuple[Window, ...]:
    """The plan's windows from the `anthropic-ratelimit-unified-*` headers."""
    h = answer.headers
    claim = (h.get(UNIFIED + "representative-claim") or "").strip()
    status = STATUSES.get((h.get(UNIFIED + "status") or "").strip())
    reset = _reset(h.get(UNIFIED + "reset"), answer.now)
    found: list[Window] = []
    for name, value in h.items():
        if not (name.startswith(UNIFIED) and name.endswith(UTILIZATION)):
            continue
        short = name[len(UNIFIED):-len(UTILIZATION)]
        if not short or short in NOT_WINDOWS:
            continue
        named = CLAIMS.get(short, short)
        window = Window(named, used=share(value), resets_at=_reset(h.get(f"{UNIFIED}{short}-reset"), answer.now),
                        asked=named in MODEL_CLAIMS)
        if window.name == claim:
            window = dataclasses.replace(window, status=status, binding=True,
                                         resets_at=window.resets_at if window.resets_at is not None else reset)
        found.append(window)
    if claim and status is not None and not any(w.name == claim for w in found):
        found.append(Window(claim, status=status, resets_at=reset, binding=True, asked=claim in MODEL_CLAIMS))
    return (*read, *found)


def exhausted(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """A 429 whose unified status is `rejected`: the plan's window is used up until its reset."""
    h = answer.headers
    if answer.status != 429 or (h.get(UNIFIED + "status") or "").strip() != "rejected":
        return error
    claim = (h.get(UNIFIED + "representative-claim") or "").strip() or "plan"
    short = next((s for s, c in CLAIMS.items() if c == claim), claim)
    reset = _reset(h.get(f"{UNIFIED}{short}-reset"), answer.now) or _reset(h.get(UNIFIED + "reset"), answer.now)
    window = None if reset is None else max(0.0, reset - answer.now)
    return dataclasses.replace(error, kind=ErrorKind.QUOTA, quota=Quota(
        window=window, per_model=claim in MODEL_CLAIMS, id=claim, what=f"the plan's {claim} window is used up"))


def _reset(text: str | None, now: float) -> float | None:
    when = epoch(text)
    return when if when is not None and when <= now + MAX_WINDOW else None

"""Codex CLI logged in with ChatGPT: OpenAI Responses at `chatgpt.com/backend-api/codex/responses` (the Codex
backend), the client's own ChatGPT login as `Authorization: Bearer <JWT>` with `chatgpt-account-id`.

- The backend takes only `store: false` and `stream: true`, and refuses `temperature`, `max_output_tokens` and
  `system` roles (instructions are `developer` messages); the body's tools come as an `additional_tools` input item
  (`{"type": "additional_tools", "role": "developer", "id": …, "tools": [namespaces and tools]}`), and Codex puts
  its `client_metadata` in. The body is sent zstd-compressed (the engine reads and writes it so).
- Each answer reports the plan's windows: the headers `x-codex-{primary,secondary}-{used-percent,window-minutes,
  reset-at}` (`-reset-after-seconds` too; another limit family than `codex` as `x-<limit>-primary-…`), and the
  `codex.rate_limits` event among the stream's first (`{rate_limits: {primary: {used_percent, window_minutes,
  reset_at}, secondary}, metered_limit_name}`). A window is named by its length (`5h`, `7d`).
- A limit family other than `codex` is some models' own (`x-codex-bengalfox-*`: gpt-5.3-codex-spark's): when
  `x-codex-active-limit` names one the answer reports, the request counts in it, `x-codex-*` repeats its figures
  (left out), and its windows and a 429 of it hold for the model asked alone; another family's figures are kept,
  never read as the login used up (they are not the request's model's).
- A used-up plan answers 429 `{"error": {"type": "usage_limit_reached", "resets_at": <unix>, "resets_in_seconds":
  <n>, "plan_type": …}}` (an error inside a 200 stream, `response.failed` with that code, reads the same).
- Codex reads the plan's reset credits (`GET /backend-api/wham/rate-limit-reset-credits`: `{available_count,
  credits: [{id, status: "available" | "redeemed", reset_type, title, granted_at, expires_at}]}`, maybe a bare
  list): what it answers is shown on the login's entry (`reset_credits`); Rotator never redeems one (`…/consume`).
- Another target of a `from: chatgpt` route (the openai key pool, in the public Responses API) gets the request
  without what binds it to the ChatGPT account (`chatgpt-account-id`, `X-OpenAI-Fedramp`, the workspace's routing
  override, the backend's turn-state token), and as the public API's types declare it: its `additional_tools`
  items as the request's `tools` (what the public API has long taken; an item's `id` names nothing a
  `store: false` request may refer to), without `client_metadata` and the `internal_chat_message_metadata_
  passthrough` and `id` Codex puts on its input items. `developer` messages and namespaced tools stay: the public
  API takes them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

from protocols.vendor_errors import ErrorAnswer, ErrorKind, Quota, VendorError
from protocols.windows import (
    NOTHING_LOOKED_UP,
    Lookup,
    Window,
    WindowAnswer,
    WindowStatus,
    epoch,
    iso,
    looked_up,
    number,
)

RATE_LIMITS_EVENT = "codex.rate_limits"
USAGE_LIMIT_REACHED = "usage_limit_reached"
DEFAULT_LIMIT = "codex"
ACTIVE_LIMIT = "x-codex-active-limit"
PLAN, ASKED, OTHER = "plan", "asked", "other"  # whose a window is: the plan's, the model asked's, other models'
WHICH = ("primary", "secondary")
ADDITIONAL_TOOLS = "additional_tools"
# Top-level members only the Codex backend reads, and what Codex adds to each input item for it.
BACKEND_ONLY = frozenset({"client_metadata"})
ITEM_METADATA = "internal_chat_message_metadata_passthrough"
# Headers that bind a request to the ChatGPT account or the backend's own routing.
ACCOUNT_HEADERS = frozenset({"chatgpt-account-id", "x-openai-fedramp", "x-openai-account-routing-override",
                             "x-codex-turn-state"})
MAX_WINDOW = 31 * 86400.0  # no plan window is longer: a later reset is a vendor's mistake
_USED = re.compile(r"^x-(.+)-primary-used-percent$")
LOOKUPS = re.compile(r"/backend-api/wham/rate-limit-reset-credits")
AVAILABLE = "available"


def claims(headers: Mapping[str, str]) -> bool:
    """Whether a request carries a login: a bearer token (Codex sends its ChatGPT access token so)."""
    return (headers.get("authorization") or "").strip().lower().startswith("bearer ")


def foreign_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers for another target than the login: without those that bind it to the ChatGPT account."""
    return [(n, v) for n, v in headers if n.lower() not in ACCOUNT_HEADERS]


def public_body(body: dict) -> dict:
    """The request as the public Responses API declares it: its `additional_tools` items as `tools`, without what
    only Codex and its backend read (`client_metadata`; each item's `internal_chat_message_metadata_passthrough`,
    and the `id` Codex gives its own input messages). `body` itself when there is nothing to change."""
    items = body.get("input")
    if not isinstance(items, list) or not any(isinstance(i, dict) and _codex_only(i) for i in items):
        return {k: v for k, v in body.items() if k not in BACKEND_ONLY} if BACKEND_ONLY & body.keys() else body
    out = {k: v for k, v in body.items() if k not in BACKEND_ONLY}
    tools = list(body["tools"]) if isinstance(body.get("tools"), list) else []
    kept = []
    for item in items:
        if not isinstance(item, dict):
            kept.append(item)
        elif _additional_tools(item):
            tools += [t for t in item["tools"] if t not in tools]
        else:
            kept.append(_public_item(item) if _codex_only(item) else item)
    out["input"] = kept
    if tools:
        out["tools"] = tools
    return out


def _additional_tools(item: dict) -> bool:
    return item.get("type") == ADDITIONAL_TOOLS and isinstance(item.get("tools"), list)


def _codex_only(item: dict) -> bool:
    return _additional_tools(item) or ITEM_METADATA in item or ("id" in item and _input_message(item))


def _input_message(item: dict) -> bool:
    return item.get("type", "message") == "message" and item.get("role") != "assistant"


def _public_item(item: dict) -> dict:
    return {k: v for k, v in item.items() if k != ITEM_METADATA and not (k == "id" and _input_message(item))}


# -- the plan's windows -----------------------------------------------------------------------------------------


def windows(answer: WindowAnswer, read: tuple[Window, ...]) -> tuple[Window, ...]:
    """The plan's windows from the `x-<limit>-{primary,secondary}-*` headers, or from a `codex.rate_limits` event
    (given as the body)."""
    found = _from_headers(answer.headers, answer.now)
    if not found and answer.body.startswith(b"{") and RATE_LIMITS_EVENT.encode() in answer.body:
        found = _from_event(answer.body, answer.now)
    return (*read, *found)


def model_limit(h: Mapping[str, str]) -> str | None:
    """The limit family other than Codex's own that the answer says its request counts in: `x-codex-active-limit`
    naming a family whose windows it reports (normalized: `codex_bengalfox`); None: the plan's own."""
    active = _limit_id(h.get(ACTIVE_LIMIT) or "")
    if active in ("", DEFAULT_LIMIT):
        return None
    return active if any((m := _USED.match(n)) and _limit_id(m.group(1)) == active for n in h) else None


def _limit_id(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _from_headers(h: Mapping[str, str], now: float) -> list[Window]:
    found = []
    scoped = model_limit(h)
    for name in h:
        m = _USED.match(name)
        if m is None:
            continue
        limit = _limit_id(m.group(1))
        if scoped is not None and limit == DEFAULT_LIMIT:  # (the model's limit's figures, repeated)
            continue
        prefix = f"x-{m.group(1)}"
        for which in WHICH:
            used = number(h.get(f"{prefix}-{which}-used-percent"))
            if used is None:
                continue
            reset = number(h.get(f"{prefix}-{which}-reset-at"))
            if reset is None and (after := number(h.get(f"{prefix}-{which}-reset-after-seconds"))) is not None:
                reset = now + after
            minutes = number(h.get(f"{prefix}-{which}-window-minutes"))
            found.append(_window(m.group(1), which, used, minutes, reset, now, scope=_scope(limit, scoped)))
    return found


def _from_event(body: bytes, now: float) -> list[Window]:
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    if not isinstance(event, dict) or event.get("type") != RATE_LIMITS_EVENT:
        return []
    limits = event.get("rate_limits")
    if not isinstance(limits, dict):
        return []
    limit = event.get("metered_limit_name") or event.get("limit_name") or DEFAULT_LIMIT
    found = []
    scope = PLAN if _limit_id(str(limit)) == DEFAULT_LIMIT else ASKED
    for which in WHICH:
        w = limits.get(which)
        if not isinstance(w, dict) or (used := _number(w.get("used_percent"))) is None:
            continue
        found.append(_window(str(limit), which, used, _number(w.get("window_minutes")),
                             _number(w.get("reset_at")), now, scope))
    return found


def _scope(limit: str, scoped: str | None) -> str:
    return PLAN if limit == DEFAULT_LIMIT else ASKED if limit == scoped else OTHER


def _window(limit: str, which: str, used_percent: float, minutes: float | None, reset: float | None,
            now: float, scope: str = PLAN) -> Window:
    """One window; exhausted when all of it is used and it names its reset (never without one: the login would
    be left for good), and it is the plan's or the model asked's (`scope`; other models' figures are kept alone)."""
    if reset is not None and not now - MAX_WINDOW < reset <= now + MAX_WINDOW:
        reset = None
    used = min(used_percent / 100, 1.0)
    status = WindowStatus.ALLOWED if used < 1 else WindowStatus.EXHAUSTED if reset is not None else None
    return Window(window_name(limit, which, minutes), used=used, resets_at=reset,
                  status=None if scope == OTHER else status, asked=scope == ASKED)


def window_name(limit: str, which: str, minutes: float | None) -> str:
    """`5h`, `7d` (another limit family than Codex's own: `codex_other 5h`); `primary` without its length."""
    if minutes:
        m = int(minutes)
        name = f"{m // 1440}d" if m % 1440 == 0 else f"{m // 60}h" if m % 60 == 0 else f"{m}m"
    else:
        name = which
    limit = limit.strip().lower().replace("-", "_")
    return name if limit in ("", DEFAULT_LIMIT) else f"{limit} {name}"


def _number(value: Any) -> float | None:
    return number(str(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# -- a used-up plan ---------------------------------------------------------------------------------------------


def exhausted(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """A 429 `usage_limit_reached`: the plan is used up until `resets_at` (else `resets_in_seconds` from now)."""
    e = answer.error
    if answer.status != 429 or e is None or USAGE_LIMIT_REACHED not in (e.get("type"), e.get("code")):
        return error
    window = None
    if (at := _number(e.get("resets_at"))) is not None and answer.now <= at <= answer.now + MAX_WINDOW:
        window = at - answer.now
    elif (after := _number(e.get("resets_in_seconds"))) is not None and after <= MAX_WINDOW:
        window = after
    plan = e.get("plan_type")
    what = f"the {plan} plan's usage limit is reached" if isinstance(plan, str) and plan else \
        "the plan's usage limit is reached"
    scoped = model_limit(answer.headers)
    if scoped is not None:
        what = f"the {scoped} limit is reached"
    return dataclasses.replace(error, kind=ErrorKind.QUOTA, quota=Quota(
        window=window, per_model=scoped is not None, id=USAGE_LIMIT_REACHED, what=what))


# -- the plan's reset credits -----------------------------------------------------------------------------------


def reset_credits(path: str, status: int, body: bytes, now: float) -> Lookup:
    """The reset credits Codex's look-up lists: how many are available and when they lapse (the soonest first)."""
    answer = looked_up(status, body)
    if answer is None:
        return NOTHING_LOOKED_UP
    items = answer.get("credits", answer.get("items"))
    credits = [c for c in items if isinstance(c, dict)] if isinstance(items, list) else []
    available = [c for c in credits if c.get("status", AVAILABLE) == AVAILABLE]
    lapse = sorted(at for c in available if isinstance(c.get("expires_at"), str)
                   and (at := epoch(c["expires_at"])) is not None and at > now)
    count = _number(answer.get("available_count"))
    if count is None and not isinstance(items, list):
        return NOTHING_LOOKED_UP
    shown: dict = {"available": int(count) if count is not None else len(available),
                   "expires_at": [iso(at) for at in lapse]}
    return (), {"reset_credits": shown}

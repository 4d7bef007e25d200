"""Antigravity (Google's agent IDE, its CLI and the clients that speak for it) on Cloud Code: Code Assist's envelope
(protocols/logins/code_assist.py: the same generation methods, answers and quota errors) with `"userAgent":
"antigravity"` and `"requestType": "agent"` in it, Claude, Gemini and GPT-OSS models served through the Gemini shape,
the client's own Google login as `Authorization: Bearer ya29.…`.

- Its hosts: the daily and autopush sandboxes and `daily-cloudcode-pa.googleapis.com`, its own; and
  `cloudcode-pa.googleapis.com`, shared with Gemini CLI, where a request is Antigravity's when its body says so
  (`userAgent`, `requestType`), its `User-Agent` is Antigravity's (`antigravity/1.18.3 darwin/arm64`), or it is
  one of the look-ups only Antigravity makes (`fetchAvailableModels`, `retrieveUserQuotaSummary`): `owns`.
- Its plan: a per-model quota, read from the client's own look-ups (`plan_lookup`): `fetchAvailableModels`
  answers `{"models": {NAME: {quotaInfo: {remainingFraction, resetTime}}}}` (no fraction: used up), and
  `retrieveUserQuotaSummary` answers `{"groups": [{displayName, buckets: [{window, remainingFraction,
  resetTime}]}]}`. A model whose quota is used up answers the Code Assist 429 `QUOTA_EXHAUSTED`.
- Its `-thinking` models (`claude-sonnet-4-5-thinking`) are aliases with thinking on, which its clients ask in the
  request's `generationConfig.thinkingConfig`: another target of a `from:` route gets that request (without what
  only Code Assist reads) under the model the route names, or, when it names none, the model the alias stands for
  (`foreign_model`), never the alias.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from protocols.logins import code_assist
from protocols.windows import NOTHING_LOOKED_UP, Lookup, Window, WindowStatus, epoch, looked_up

HOSTS = ("daily-cloudcode-pa.sandbox.googleapis.com", "daily-cloudcode-pa.googleapis.com",
         "autopush-cloudcode-pa.sandbox.googleapis.com", "cloudcode-pa.googleapis.com")
THINKING = "-thinking"
SHARED_HOST = "cloudcode-pa.googleapis.com"  # Gemini CLI's too
USER_AGENT = "antigravity"
LOOKUPS = re.compile(r"/v1internal:(fetchAvailableModels|retrieveUserQuotaSummary)")
# What its envelope says, as the bytes of a body read only for it (`owns`, asked before the body is parsed).
_SAYS = re.compile(rb'"userAgent"\s*:\s*"antigravity"|"requestType"\s*:\s*"(?:agent|web_search|image_gen)"')
_HEAD = 4096  # the envelope's members come before or after the (long) request: its head and tail are read


def owns(headers: Mapping[str, str], path: str, body: bytes | None) -> bool:
    """Whether a request on a host shared with Gemini CLI is Antigravity's: its body's envelope, its User-Agent or
    its method says so."""
    if (headers.get("user-agent") or "").lower().startswith(USER_AGENT + "/"):
        return True
    if LOOKUPS.fullmatch(path.partition("?")[0]):
        return True
    if not body:
        return False
    return _SAYS.search(body[:_HEAD]) is not None or _SAYS.search(body[-_HEAD:]) is not None


def foreign_body(body: dict) -> dict:
    """The Gemini request as another target takes it: Code Assist's own members left out."""
    return code_assist.foreign_body(body)


def foreign_model(model: str) -> str:
    """The model another vendor knows a `-thinking` alias as: the model it stands for (thinking asked in the body)."""
    return model.removesuffix(THINKING) if model.endswith(THINKING) and len(model) > len(THINKING) else model


# -- the plan's look-ups ----------------------------------------------------------------------------------------


def plan_lookup(path: str, status: int, body: bytes, now: float) -> Lookup:
    """The plan's windows an answer to one of the client's look-ups reports (none for another answer)."""
    answer = looked_up(status, body)
    if answer is None:
        return NOTHING_LOOKED_UP
    if isinstance(answer.get("models"), dict):
        return tuple(w for name, m in answer["models"].items() if (w := _model_window(name, m, now)) is not None), {}
    if isinstance(answer.get("groups"), list):
        return tuple(w for g in answer["groups"] if isinstance(g, dict) for w in _group_windows(g, now)), {}
    return NOTHING_LOOKED_UP


def _model_window(name: Any, model: Any, now: float) -> Window | None:
    """A model's quota as `fetchAvailableModels` reports it: no `remainingFraction` is none left."""
    info = model.get("quotaInfo") if isinstance(model, dict) else None
    if not isinstance(name, str) or not isinstance(info, dict):
        return None
    return _window(f"{name} quota", info.get("remainingFraction", 0.0), info.get("resetTime"), now, name)


def _group_windows(group: dict, now: float) -> list[Window]:
    """A model group's buckets as `retrieveUserQuotaSummary` reports them (`5h`, `weekly`)."""
    label = group.get("displayName") if isinstance(group.get("displayName"), str) else "plan"
    buckets = group.get("buckets")
    found = []
    for b in buckets if isinstance(buckets, list) else ():
        if isinstance(b, dict) and "remainingFraction" in b:
            window = b.get("window") or b.get("bucketId") or "window"
            if (w := _window(f"{label} {window}", b.get("remainingFraction"), b.get("resetTime"), now)) is not None:
                found.append(w)
    return found


def _window(name: str, remaining: Any, reset_text: Any, now: float, model: str | None = None) -> Window | None:
    if isinstance(remaining, bool) or not isinstance(remaining, (int, float)) or not 0 <= remaining <= 1:
        return None
    reset = epoch(reset_text) if isinstance(reset_text, str) else None
    if reset is not None and not now - code_assist.MAX_WINDOW < reset <= now + code_assist.MAX_WINDOW:
        reset = None
    used = 1.0 - float(remaining)
    status = WindowStatus.ALLOWED if used < 1 else WindowStatus.EXHAUSTED if reset is not None else None
    return Window(name, used=round(used, 4), resets_at=reset, status=status, model=model)

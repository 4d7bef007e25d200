"""The fake vendor's login dialects: what the four login CLIs talk to, on top of the fake's four protocols
(tests/support/fake_vendor.py calls the hooks below).

- `chatgpt` (Codex with a ChatGPT login): Responses at `…/codex/responses`. `store: false` and `stream: true`
  required, `temperature`, `max_output_tokens` and `system` roles refused, each with the backend's own 400
  (`{"detail": …}`); zstd request bodies; a `codex.rate_limits` event after `response.created` and the
  `x-codex-primary-*` / `x-codex-secondary-*` headers; its in-stream error (`Fault.error_after`) is a
  `response.failed`; the WebSocket upgrade is answered 426 (Codex then uses HTTPS for the session).
- `code_assist` (Gemini CLI on Code Assist): `/v1internal:streamGenerateContent?alt=sse`, `:generateContent` and
  `:countTokens`, whose body wraps the Gemini request as `{model, project, user_prompt_id, request}` and whose
  answers are `{"response": …, "traceId": …}`; and Code Assist's own calls (`:loadCodeAssist`, …), answered by the
  stand-ins (tests/support/stand_ins.py) without taking a scripted fault.
- `copilot` (Copilot CLI): `/responses`, `/chat/completions`, `/v1/messages` (with `copilot-integration-id`) and
  `GET /models` at the API host's root, with the `x-quota-snapshot-*` headers.
- `claude_login` (Claude Code on Pro/Max): Anthropic Messages sent with `Authorization: Bearer sk-ant-oat01-…`,
  answered with the `anthropic-ratelimit-unified-*` headers.

A request in a dialect is recorded with its base protocol (`responses`, `gemini`, `chat`, `anthropic`) and
`Request.dialect`, so every fault works on it as on its protocol. Each plan's exhaustion answer is a `Fault`
(`exhausted(CHATGPT)`, ...), scripted like any other; so are other plan windows (`Fault.with_headers(windows(...))`,
which win over the defaults).
"""

from __future__ import annotations

import re
import time
from typing import Any

import zstandard

from tests.support import fake_vendor as fv
from tests.support import stand_ins

CHATGPT, CODE_ASSIST, COPILOT, CLAUDE_LOGIN = "chatgpt", "code_assist", "copilot", "claude_login"
DIALECTS = (CHATGPT, CODE_ASSIST, COPILOT, CLAUDE_LOGIN)

_CHATGPT_PATH = re.compile(r"^(?:/[^?]*)?/codex/responses$")
_CHATGPT_OTHER = re.compile(r"^(?:/[^?]*)?/codex/.+$")  # Codex's other backend calls (models, analytics): 404
CHATGPT_OTHER = "chatgpt-other"
_CODE_ASSIST_PATH = re.compile(r"^(?:/[^:?]*)?/v1internal:(\w+)$")
_COPILOT_PATHS = {"/responses": fv.RESPONSES, "/chat/completions": fv.CHAT}
OAUTH_TOKEN = re.compile(r"^Bearer sk-ant-oat\d*-", re.IGNORECASE)

# The ChatGPT backend's refusals, in its own words (400 {"detail": …}; seen by peers: CLIProxyAPI PR 41,
# kodus-ai issue 1802, ChatMock issue 103, CLIProxyAPI issue 4092).
CHATGPT_STORE = "Store must be set to false"
CHATGPT_STREAM = "Stream must be set to true"
CHATGPT_SYSTEM = "System messages are not allowed"
CHATGPT_UNSUPPORTED = ("temperature", "max_output_tokens", "top_p")


def route(method: str, path: str, headers: dict[str, str]) -> tuple[str, str | None] | None:
    """(protocol, dialect) of a request in a login dialect; None for any other."""
    if _CHATGPT_PATH.match(path):
        if method == "POST":
            return fv.RESPONSES, CHATGPT
        if method == "GET" and headers.get("upgrade", "").lower() == "websocket":
            return "chatgpt-websocket", CHATGPT
        return None
    if _CHATGPT_OTHER.match(path):  # (recorded as they came, no dialect: they take no fault and get a 404)
        return CHATGPT_OTHER, None
    m = _CODE_ASSIST_PATH.match(path)
    if m and method == "POST":
        verb = m.group(1)
        if verb in ("generateContent", "streamGenerateContent"):
            return fv.GEMINI, CODE_ASSIST
        if verb == "countTokens":
            return "code_assist-count_tokens", CODE_ASSIST
        if verb in stand_ins.CODE_ASSIST_SIDE or verb in stand_ins.ANTIGRAVITY_LOOKUPS:
            return f"code_assist-{verb}", CODE_ASSIST
        return None
    if method == "GET" and path == "/models":
        return "copilot-models", COPILOT
    if method == "POST" and path in _COPILOT_PATHS:
        return _COPILOT_PATHS[path], COPILOT
    if method == "POST" and path in ("/v1/messages", "/v1/messages/count_tokens"):
        protocol = fv.ANTHROPIC if path == "/v1/messages" else "anthropic-count_tokens"
        if "copilot-integration-id" in headers:
            return protocol, COPILOT
        if OAUTH_TOKEN.match(headers.get("authorization", "")):
            return protocol, CLAUDE_LOGIN
    return None


def decoded(raw: bytes, headers: dict[str, str]) -> bytes:
    """A request body as its JSON reads (Codex compresses its ChatGPT-mode bodies with zstd)."""
    if raw and headers.get("content-encoding", "").strip().lower() == "zstd":
        try:
            return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
        except zstandard.ZstdError:
            return raw
    return raw


def takes_fault(protocol: str | None) -> bool:
    """Whether a request in a dialect takes a scripted fault: its generation calls do; the calls the CLIs make
    around a turn (Code Assist's own, Copilot's model list, Codex's WebSocket upgrade) do not."""
    return protocol in fv.GENERATION_PROTOCOLS or (protocol or "").endswith("count_tokens")


def declared_tools(body: dict) -> list[str]:
    """The names of the tools a Responses request declares: its `tools`, and (Codex on ChatGPT, which sends no
    `tools`) its `additional_tools` input items; a namespace's tools by their own names."""
    def names(tools: Any) -> list[str]:
        out: list[str] = []
        for tool in tools if isinstance(tools, list) else []:
            if isinstance(tool, dict):
                out += names(tool.get("tools")) if tool.get("type") == "namespace" else [str(tool.get("name"))]
        return out
    items = body.get("input") if isinstance(body.get("input"), list) else []
    extra = [t for i in items if isinstance(i, dict) and i.get("type") == "additional_tools" for t in names(i["tools"])]
    return names(body.get("tools")) + extra


# --- plan windows (the answers' default headers) and exhaustion answers


def windows(dialect: str, used: float = 0.12, weekly: float = 0.30, resets_in: int = 3600) -> dict[str, str]:
    """The plan-window headers an answer in `dialect` carries: `used` of the short window (5 h; Copilot: the
    premium requests), `weekly` of the long one, as shares (0..1)."""
    now = int(time.time())
    if dialect == CHATGPT:
        return {
            "x-codex-primary-used-percent": f"{used * 100:g}", "x-codex-primary-window-minutes": "300",
            "x-codex-primary-reset-at": str(now + resets_in), "x-codex-primary-reset-after-seconds": str(resets_in),
            "x-codex-secondary-used-percent": f"{weekly * 100:g}", "x-codex-secondary-window-minutes": "10080",
            "x-codex-secondary-reset-at": str(now + 5 * 86400),
            "x-codex-secondary-reset-after-seconds": str(5 * 86400),
            "x-codex-plan-type": "pro", "x-codex-active-limit": "codex",
            "x-codex-credits-has-credits": "False", "x-codex-credits-unlimited": "False",
        }
    if dialect == CLAUDE_LOGIN:
        return {
            "anthropic-ratelimit-unified-status": "allowed" if used < 1 else "rejected",
            "anthropic-ratelimit-unified-reset": str(now + resets_in),
            "anthropic-ratelimit-unified-representative-claim": "five_hour",
            "anthropic-ratelimit-unified-5h-utilization": f"{used:g}",
            "anthropic-ratelimit-unified-5h-reset": str(now + resets_in),
            "anthropic-ratelimit-unified-7d-utilization": f"{weekly:g}",
            "anthropic-ratelimit-unified-7d-reset": str(now + 5 * 86400),
            "anthropic-ratelimit-unified-fallback": "available",
            "anthropic-ratelimit-unified-overage-status": "rejected",
            "anthropic-ratelimit-unified-overage-disabled-reason": "org_level_disabled",
        }
    if dialect == COPILOT:
        # URL-encoded pairs, `rem` the percentage left (peers parse them so: VS Code's Copilot Chat and others)
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 20 * 86400)).replace(":", "%3A")
        return {"x-quota-snapshot-premium_interactions": f"ent=300&ov=0.0&ovPerm=false&rem={(1 - used) * 100:.1f}"
                                                         f"&rst={reset}",
                "x-quota-snapshot-chat": f"ent=-1&ov=0.0&ovPerm=true&rem=100.0&rst={reset}"}
    return {}


def exhausted(dialect: str, resets_in: int = 7200, message: str | None = None) -> fv.Fault:
    """The answer of a plan that is used up, as each backend gives it (subscriptions.md: "Exhausted")."""
    now = int(time.time())
    if dialect == CHATGPT:
        body = {"error": {"type": "usage_limit_reached", "message": message or "The usage limit has been reached",
                          "plan_type": "pro", "resets_at": now + resets_in, "resets_in_seconds": resets_in}}
        return fv.Fault.status(429, body, windows(CHATGPT, used=1.0, resets_in=resets_in))
    if dialect == CLAUDE_LOGIN:
        body = {"type": "error", "error": {"type": "rate_limit_error", "message": message or "Error"},
                "request_id": "req_fake_exhausted"}
        return fv.Fault.status(429, body, windows(CLAUDE_LOGIN, used=1.0, resets_in=resets_in))
    if dialect == CODE_ASSIST:
        return fv.Fault.status(429, code_assist_quota_error(resets_in, message))
    if dialect == COPILOT:
        body = {"error": {"message": message or "You have no quota", "code": "quota_exceeded"}}
        return fv.Fault.status(402, body, windows(COPILOT, used=1.0))
    raise ValueError(f"unknown dialect {dialect!r}")


def code_assist_quota_error(resets_in: int, message: str | None = None) -> dict:
    """Code Assist's 429 for a used-up quota: RESOURCE_EXHAUSTED, ErrorInfo QUOTA_EXHAUSTED and a RetryInfo of
    the whole wait (google-gemini/gemini-cli issue 29425)."""
    hours, minutes = divmod(resets_in // 60, 60)
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + resets_in))
    text = message or f"You have exhausted your capacity on this model. Your quota will reset after {hours}h{minutes}m."
    return {"error": {"code": 429, "message": text, "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "QUOTA_EXHAUSTED",
         "domain": "cloudcode-pa.googleapis.com",
         "metadata": {"quotaResetTimeStamp": reset, "quotaResetDelay": f"{resets_in}s", "model": "gemini-2.5-flash"}},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{resets_in}s"},
    ]}}


# --- the fake vendor's hooks


def headers(rec: fv.Request, base: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`base` (the fault's own headers last) with the dialect's plan windows for names it does not give."""
    given = {k for k, _ in base}
    return base + [(k, v) for k, v in windows(rec.dialect or "").items() if k not in given]


def refusal(rec: fv.Request) -> tuple[int, Any] | None:
    """The backend's 400 for a request its dialect does not take."""
    body = rec.body
    if rec.dialect == CHATGPT and rec.protocol == fv.RESPONSES and isinstance(body, dict):
        if body.get("store") is not False:
            return 400, {"detail": CHATGPT_STORE}
        if body.get("stream") is not True:
            return 400, {"detail": CHATGPT_STREAM}
        for name in CHATGPT_UNSUPPORTED:
            if name in body:
                return 400, {"detail": f"Unsupported parameter: {name}"}
        items = body.get("input") if isinstance(body.get("input"), list) else []
        if any(isinstance(i, dict) and i.get("role") == "system" for i in items):
            return 400, {"detail": CHATGPT_SYSTEM}
    if rec.dialect == CODE_ASSIST and rec.protocol == fv.GEMINI and not isinstance(inner(rec), dict):
        return 400, fv.error_body(fv.GEMINI, 400, "Invalid JSON payload received. Missing field \"request\".")
    return None


def inner(rec: fv.Request) -> Any:
    """The request the protocol's machinery reads: Code Assist's envelope unwrapped."""
    if rec.dialect == CODE_ASSIST and isinstance(rec.body, dict):
        return rec.body.get("request")
    return rec.body


def events(rec: fv.Request, evs: list[fv.Ev], sent_headers: list[tuple[str, str]]) -> list[fv.Ev]:
    if rec.dialect == CODE_ASSIST:
        return [_wrapped(ev, rec.index) for ev in evs]
    if rec.dialect == CHATGPT:
        limits = rate_limits_event(dict(sent_headers))
        return evs[:1] + [fv.Ev(fv.sse(limits, event=limits["type"]), False, limits)] + evs[1:]
    return evs


def whole(rec: fv.Request, body: dict) -> dict:
    return {"response": body, "traceId": f"trace-fake{rec.index}"} if rec.dialect == CODE_ASSIST else body


def error_event(rec: fv.Request, sequence_number: int) -> bytes | None:
    """The dialect's in-stream error after a 200, where it differs from its protocol's."""
    if rec.dialect == CHATGPT:
        error = {"code": "server_error", "message": "An error occurred while processing your request."}
        response = {"id": f"resp_fake{rec.index}", "object": "response", "status": "failed", "error": error,
                    "output": [], "usage": None}
        return fv.sse({"type": "response.failed", "sequence_number": sequence_number, "response": response},
                      event="response.failed")
    if rec.dialect == CODE_ASSIST:
        err = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
        return fv.sse(err, eol="\r\n")
    return None


def other(protocol: str, body: Any) -> tuple[int, Any] | None:
    """The dialects' answers besides generation."""
    if protocol == "chatgpt-websocket":
        return 426, {"error": {"message": "Upgrade Required: use HTTPS", "type": "invalid_request_error"}}
    if protocol == "code_assist-count_tokens":
        return 200, {"totalTokens": fv.INPUT_TOKENS}
    if protocol.startswith("code_assist-"):
        return 200, stand_ins.code_assist_side(protocol.partition("-")[2], body)
    if protocol == "copilot-models":
        return 200, copilot_models()
    return None


def rate_limits_event(sent: dict[str, str]) -> dict:
    """Codex's `codex.rate_limits` event, agreeing with the x-codex-* headers sent."""
    def window(which: str) -> dict | None:
        used = sent.get(f"x-codex-{which}-used-percent")
        if used is None:
            return None
        minutes, reset = sent.get(f"x-codex-{which}-window-minutes"), sent.get(f"x-codex-{which}-reset-at")
        return {"used_percent": float(used), "window_minutes": int(minutes) if minutes else None,
                "reset_at": int(reset) if reset else None}
    credits = {"has_credits": sent.get("x-codex-credits-has-credits", "").lower() == "true",
               "unlimited": sent.get("x-codex-credits-unlimited", "").lower() == "true", "balance": None}
    return {"type": "codex.rate_limits", "plan_type": sent.get("x-codex-plan-type"),
            "rate_limits": {"primary": window("primary"), "secondary": window("secondary")}, "credits": credits}


# The default model (speaks Responses), one that speaks Anthropic Messages, one that speaks only Chat.
COPILOT_MODELS = {"gpt-5-mini": ("Azure OpenAI", ["/chat/completions", "/responses"]),
                  "claude-sonnet-4.5": ("Anthropic", ["/chat/completions", "/v1/messages"]),
                  "gemini-3.7-flash": ("Google", ["/chat/completions"])}
DEFAULT_COPILOT_MODEL = "gpt-5-mini"


def copilot_models() -> dict:
    """`GET {api}/models`: the models the Copilot CLI may pick, with the endpoints each takes."""
    def model(name: str, vendor: str, endpoints: list[str]) -> dict:
        return {"id": name, "name": name, "object": "model", "vendor": vendor, "version": name,
                "preview": False, "model_picker_enabled": True, "model_picker_category": "versatile",
                "supported_endpoints": endpoints, "is_chat_default": name == DEFAULT_COPILOT_MODEL,
                "is_chat_fallback": name == DEFAULT_COPILOT_MODEL, "policy": {"state": "enabled", "terms": ""},
                "billing": {"is_premium": False, "multiplier": 0},
                "capabilities": {"type": "chat", "family": name, "object": "model_capabilities",
                                 "tokenizer": "o200k_base",
                                 "limits": {"max_context_window_tokens": 128000, "max_output_tokens": 16384,
                                            "max_prompt_tokens": 128000},
                                 "supports": {"streaming": True, "tool_calls": True, "parallel_tool_calls": True,
                                              "structured_outputs": True, "vision": False}}}
    return {"object": "list", "data": [model(name, *spec) for name, spec in COPILOT_MODELS.items()]}


def _wrapped(ev: fv.Ev, index: int) -> fv.Ev:
    """A Gemini stream event inside Code Assist's envelope."""
    if ev.payload is None or not ev.data.startswith(b"data:"):
        return ev
    payload = {"response": ev.payload, "traceId": f"trace-fake{index}"}
    return fv.Ev(fv.sse(payload, eol="\r\n"), ev.delta, payload)

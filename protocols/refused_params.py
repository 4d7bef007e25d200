"""Which request parameter an upstream's 400 says its model does not support, and the request without it.

Each vendor says it its own way:
- OpenAI: `{"error": {"param": "temperature", "code": "unsupported_parameter" | "unsupported_value", ...}}`
  ("Unsupported parameter: 'temperature' is not supported with this model."; the code is sometimes null).
- Anthropic: `invalid_request_error` with a message that names the field: "`temperature` is deprecated for this
  model.", "context_management: Extra inputs are not permitted", "\"thinking.type.enabled\" is not supported for
  this model. ...", "adaptive thinking is not supported on this model".
- Gemini: `INVALID_ARGUMENT` "Invalid JSON payload received. Unknown name \"topK\" at 'generation_config': Cannot
  find field." (one such sentence per field), or "Thinking level is not supported for this model."

A parameter is a dotted path of object keys as the upstream request has them ("temperature", "reasoning.effort",
"generationConfig.topK"). A field inside a list (a message, a tool) is not a parameter: such an error names none.
"""

from __future__ import annotations

import json
import re

REFUSAL_STATUS = 400

# Parameters without which a request means something else or nothing: their refusal goes to the client.
ESSENTIAL = {
    "openai": frozenset({"model", "messages", "input", "instructions", "tools", "stream", "previous_response_id",
                         "conversation"}),
    "anthropic": frozenset({"model", "messages", "max_tokens", "system", "tools", "stream"}),
    "gemini": frozenset({"contents", "systemInstruction", "tools", "toolConfig", "cachedContent"}),
}

OPENAI_CODES = frozenset({"unsupported_parameter", "unsupported_value"})
OPENAI_MESSAGES = (re.compile(r"^Unsupported parameter: '([\w.]+)'"),
                   re.compile(r"^Unrecognized request argument supplied: ([\w.]+)"))
ANTHROPIC_MESSAGES = (
    re.compile(r"^`?([\w.]+)`? is deprecated for this model"),
    re.compile(r"^([\w.]+): Extra inputs are not permitted"),
    re.compile(r'^"(\w+)\.[\w.]+" is not supported for this model'),  # "thinking.type.enabled" ...
    re.compile(r"^`\w+` and `(\w+)` cannot both be specified for this model"),  # the second one goes
    re.compile(r"^(\w+): .*\bnot supported\b"),
)
ANTHROPIC_THINKING = re.compile(r"^adaptive thinking is not supported on this model", re.IGNORECASE)
GEMINI_UNKNOWN = re.compile(r"""Unknown name \\?"(\w+)\\?"(?: at '([^']*)')?""")
GEMINI_THINKING_LEVEL = re.compile(r"^Thinking level is not supported for this model", re.IGNORECASE)
GEMINI_CONFIG = "generationConfig"
THINKING_LEVEL = f"{GEMINI_CONFIG}.thinkingConfig.thinkingLevel"
PARAM = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")  # keys only: no list index, no numeric segment


def refused_params(family: str, status: int, body: bytes) -> tuple[str, ...]:
    """The parameters an upstream error answer says the model does not support (none: it is about something
    else, or about a parameter a request cannot go without)."""
    if status != REFUSAL_STATUS:
        return ()
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError, RecursionError):
        return ()
    if not isinstance(error, dict):
        return ()
    named = READERS[family](error) if family in READERS else ()
    return tuple(p for p in dict.fromkeys(named) if PARAM.match(p) and not essential(family, p))


def openai_refused(error: dict) -> list[str]:
    message, param = _message(error), error.get("param")
    if isinstance(param, str) and (error.get("code") in OPENAI_CODES or message.startswith("Unsupported ")):
        return [param]
    return [m.group(1) for pattern in OPENAI_MESSAGES if (m := pattern.match(message))][:1]


def anthropic_refused(error: dict) -> list[str]:
    if error.get("type") != "invalid_request_error":
        return []
    message = _message(error)
    if ANTHROPIC_THINKING.match(message):
        return ["thinking"]
    return [m.group(1) for pattern in ANTHROPIC_MESSAGES if (m := pattern.match(message))][:1]


def gemini_refused(error: dict) -> list[str]:
    if error.get("status") != "INVALID_ARGUMENT":
        return []
    message = _message(error)
    if GEMINI_THINKING_LEVEL.match(message):
        return [THINKING_LEVEL]
    return [".".join([*map(camel, where.split("."))] + [name]) if where else name
            for name, where in GEMINI_UNKNOWN.findall(message)]


READERS = {"openai": openai_refused, "anthropic": anthropic_refused, "gemini": gemini_refused}


def shown_param(param: str) -> str:
    """A parameter as the flow and the log name it: Gemini's sampling and thinking fields without their holder."""
    return param.removeprefix(GEMINI_CONFIG + ".")


def essential(family: str, param: str) -> bool:
    return camel(param.split(".", 1)[0]) in {camel(p) for p in ESSENTIAL.get(family, ())}


def without(body: dict, param: str) -> dict | None:
    """A copy of `body` without `param` (objects along its path are copied, the rest shared); None when the body
    does not carry it. Each key matches as written or in its other case (Gemini takes `top_k` and `topK`)."""
    parts = param.split(".")
    key = _key_in(body, parts[0])
    if key is None:
        return None
    if len(parts) == 1:
        return {k: v for k, v in body.items() if k != key}
    inner = body[key]
    rest = without(inner, ".".join(parts[1:])) if isinstance(inner, dict) else None
    return None if rest is None else {**body, key: rest}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _key_in(obj: dict, name: str) -> str | None:
    for key in (name, camel(name), snake(name)):
        if key in obj:
            return key
    return None


def _message(error: dict) -> str:
    message = error.get("message")
    return message.strip() if isinstance(message, str) else ""

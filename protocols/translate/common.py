"""Small conversions several protocols share: tool arguments, reasoning effort and budgets, images, errors, JSON
asked for in words."""

from __future__ import annotations

import json
import mimetypes
import re

from protocols.capabilities import EFFORT_BUDGETS, EFFORT_NONE
from protocols.sse import dumps
from protocols.unified import Image, ReasoningConfig, Request, Text
from protocols.unified_stream import KIND_CONTEXT_LENGTH, Error

DEFAULT_IMAGE_TYPE = "image/jpeg"
DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*;base64,(?P<data>.*)", re.S)

# Messages by which vendors say the prompt does not fit the model's context window.
CONTEXT_LENGTH = re.compile(
    r"context_length_exceeded|context length|context window|prompt is too long|too many tokens"
    r"|input token count.*exceeds|exceeds the maximum number of tokens",
    re.I,
)
# Vendor error types/statuses -> HTTP status, for errors that arrive in a stream (no status line of their own).
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "api_error": 500,
    "server_error": 500,
    "overloaded_error": 529,
    "timeout_error": 504,
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
GEMINI_BAD_KEY = "API_KEY_INVALID"
UNAUTHORIZED = 401
RATE_LIMITED = 429


def string(value: object) -> str:
    """A JSON value that should be a string, or "" (an upstream of the wrong shape must not break a stream)."""
    return value if isinstance(value, str) else ""


def parse_arguments(arguments: str) -> dict:
    """Tool arguments as the object Anthropic and Gemini carry.

    Lossy: arguments that are not a JSON object (invalid, cut, or another JSON type) become {}.
    """
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def dump_arguments(arguments: object) -> str:
    return dumps(arguments if arguments is not None else {}).decode()


# JSON without a schema (Chat/Responses `json_object`, Gemini `responseMimeType` alone) said in words: to Anthropic,
# whose `output_config.format` takes only a schema (and whose schemas must close every object with
# `additionalProperties: false`, so no schema means "any object"), and to OpenAI when the request does not say
# "json", which it refuses json_object without.
JSON_INSTRUCTION = "Answer with a single valid JSON object and nothing else: no text before or after it, no code fence."


def with_json_instruction(request: Request, *texts: str | None, always: bool = True) -> str:
    """`texts` (a target's instructions) joined by blank lines, then JSON_INSTRUCTION if `request` asks for JSON
    without a schema: for a target with no JSON mode `always`, else only when no instruction or message of the
    request says "json"."""
    fmt = request.response_format
    if fmt is not None and fmt.schema is None and (always or not _says_json(request)):
        texts = (*texts, JSON_INSTRUCTION)
    return "\n\n".join(text for text in texts if text)


def _says_json(request: Request) -> bool:
    texts = (p.text for m in request.messages for p in m.parts if isinstance(p, Text))
    return any("json" in t.lower() for t in (request.system or "", *texts))


def output_cap(max_tokens: int | None, least: int = 1) -> int | None:
    """A request's output cap as a target of another protocol takes it: at least `least`. An Anthropic client's 0 (a
    prompt-cache warm-up, which no other vendor has: OpenAI refuses it) asks for one token; OpenAI's Responses API
    refuses a cap under 16. Lossy: a cap under the target's least is raised to it."""
    return None if max_tokens is None else max(max_tokens, least)


def budget_for(config: ReasoningConfig) -> int | None:
    """A thinking budget for a target that takes one; None when thinking should stay off or unsaid."""
    if not config.enabled or config.effort == EFFORT_NONE:
        return None
    if config.budget is not None:
        return config.budget
    return EFFORT_BUDGETS.get(config.effort or "")


def image_from_url(url: str, detail: str | None = None) -> Image:
    """An image from an OpenAI image URL, which may be a base64 data URL."""
    match = DATA_URL.match(url)
    if match:
        return Image(data=match["data"], media_type=match["type"] or DEFAULT_IMAGE_TYPE, detail=detail)
    return Image(url=url, detail=detail)


def image_url(image: Image) -> str:
    """An image as an OpenAI image URL (base64 images as data URLs)."""
    if image.url:
        return image.url
    return f"data:{image.media_type or DEFAULT_IMAGE_TYPE};base64,{image.data or ''}"


def guess_image_type(url: str) -> str:
    """The media type of an image URL, from its extension (Gemini's fileData wants one)."""
    return mimetypes.guess_type(url.split("?", 1)[0])[0] or DEFAULT_IMAGE_TYPE


def error_from_body(status: int, body: bytes | dict) -> Error:
    """Any vendor's error answer (OpenAI, Anthropic or Gemini shape, or plain text) as a unified error."""
    obj: object = body
    if isinstance(body, (bytes, str)):
        try:
            obj = json.loads(body)
        except ValueError:
            obj = None
    if isinstance(obj, list) and obj:  # Gemini's JSON-array stream wraps its error
        obj = obj[0]
    error = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(obj, dict) and error is None and isinstance(obj.get("message", obj.get("Message")), str):
        error = {"message": obj.get("message", obj.get("Message"))}  # AWS's shape: the message, its type beside it
    if not isinstance(error, dict):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(error or body)
        return Error(status, text.strip()[:2000] or f"upstream error {status}")
    return error_from_object(error, status)


def error_from_object(error: dict, status: int | None = None) -> Error:
    """A vendor's `error` object (from a body or an in-stream event) as a unified error.

    Lossy: beyond the status, the message and a context-window overflow, a vendor's error codes and details
    (Gemini's RetryInfo, Anthropic's request_id) take the client protocol's defaults for the status.
    """
    message = str(error.get("message") or "")
    names = [str(error.get(key)) for key in ("code", "type", "status") if isinstance(error.get(key), str)]
    if status is None:
        code = error.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else None
        status = status or next((ERROR_STATUS[n] for n in names if n in ERROR_STATUS), 500)
    if GEMINI_BAD_KEY in json.dumps(error.get("details") or ""):
        status = UNAUTHORIZED  # Gemini says 400 INVALID_ARGUMENT for a bad key; other SDKs expect 401
    # A rate limit is never about the prompt's length, whatever its words (Bedrock's "Too many tokens").
    overflow = status != RATE_LIMITED and CONTEXT_LENGTH.search(" ".join([message, *names]))
    kind = KIND_CONTEXT_LENGTH if overflow else None
    return Error(status, message or " ".join(names) or f"upstream error {status}", kind)

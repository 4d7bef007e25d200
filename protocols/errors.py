"""Each vendor's error object for an HTTP status, shared by the HTTP error bodies and the in-stream error events."""

from __future__ import annotations

from protocols.unified_stream import KIND_CONTEXT_LENGTH, KIND_TRUNCATED

TRUNCATED_MESSAGE = "upstream stream truncated"

# OpenAI: status -> (error.type, error.code)
OPENAI_SERVER_ERROR = "server_error"
OPENAI_TRUNCATED_CODE = "stream_truncated"
OPENAI_CONTEXT_LENGTH_CODE = "context_length_exceeded"
# A unified error's kind (protocols/unified.py) -> the code OpenAI's clients read for it.
_OPENAI_KIND_CODES = {KIND_CONTEXT_LENGTH: OPENAI_CONTEXT_LENGTH_CODE, KIND_TRUNCATED: OPENAI_TRUNCATED_CODE}
_OPENAI = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "not_found"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    503: (OPENAI_SERVER_ERROR, "overloaded"),
    529: (OPENAI_SERVER_ERROR, "overloaded"),
}

ANTHROPIC_API_ERROR = "api_error"
_ANTHROPIC = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: ANTHROPIC_API_ERROR,
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# Gemini: status -> gRPC status name; Gemini has no 529, so it reports 503.
GEMINI_INTERNAL = "INTERNAL"
_GEMINI = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: GEMINI_INTERNAL,
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_GEMINI_STATUS_CODE = {529: 503}


def openai_error(status: int, message: str, kind: str | None = None) -> dict:
    """OpenAI's `error` object (both OpenAI protocols write it), with the code of a unified error's `kind`."""
    fallback = ("invalid_request_error", None) if status < 500 else (OPENAI_SERVER_ERROR, None)
    type_, code = _OPENAI.get(status) or fallback
    return {"message": message, "type": type_, "param": None, "code": _OPENAI_KIND_CODES.get(kind or "", code)}


def anthropic_error(status: int, message: str) -> dict:
    """Anthropic's `error` object."""
    type_ = _ANTHROPIC.get(status) or ("invalid_request_error" if status < 500 else ANTHROPIC_API_ERROR)
    return {"type": type_, "message": message}


def gemini_error(status: int, message: str) -> dict:
    """Gemini's `error` object."""
    code = _GEMINI_STATUS_CODE.get(status, status)
    name = _GEMINI.get(code) or ("FAILED_PRECONDITION" if code < 500 else GEMINI_INTERNAL)
    return {"code": code, "message": message, "status": name}

"""What an Amazon Bedrock error says (protocols/vendor_errors.py), whichever Bedrock call it answers.

Bedrock names its error by an exception type: in the `x-amzn-errortype` header of an HTTP error answer
(`ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/`), or in `__type` or `code` of its JSON
body, whose `message` (or `Message`) is the text; inside a 200 event stream, as the `:exception-type` of an exception
frame (`throttlingException`, lower camel case) whose payload is `{"message": ...}`. The types and their statuses are
botocore's service model of bedrock-runtime (2023-09-30).

- `ThrottlingException` (429) is a rate limit, also when it says "Too many tokens, please wait before trying again."
  (the words are about the account's tokens per minute, not the prompt's length).
- `ModelNotReadyException` (429) and `ServiceUnavailableException` (503): the model or the service is busy.
- `InternalServerException` (500), `ModelTimeoutException` (408), `ModelErrorException` and
  `ModelStreamErrorException` (424): the model failed this once.
- `ServiceQuotaExceededException` (400): an account quota is spent (no window is named).
- `AccessDeniedException` (403) and the signing errors (`UnrecognizedClientException`, `InvalidSignatureException`,
  `ExpiredTokenException`, ...): the credential is refused.
- `ValidationException` (400), `ResourceNotFoundException` (404): the request's own fault.
"""

from __future__ import annotations

import dataclasses
import json

from protocols.vendor_errors import ErrorAnswer, ErrorKind, ErrorReader, Quota, VendorError

ERROR_TYPE_HEADER = "x-amzn-errortype"
TYPE_KEYS = ("__type", "code", "Code")
MESSAGE_KEYS = ("message", "Message")

THROTTLING = "ThrottlingException"
VALIDATION = "ValidationException"
INTERNAL = "InternalServerException"
UNAVAILABLE = "ServiceUnavailableException"
MODEL_STREAM_ERROR = "ModelStreamErrorException"
MODEL_TIMEOUT = "ModelTimeoutException"
QUOTA_EXCEEDED = "ServiceQuotaExceededException"
ACCESS_DENIED = "AccessDeniedException"
NOT_FOUND = "ResourceNotFoundException"

# Exception type -> (HTTP status, what it means).
EXCEPTIONS: dict[str, tuple[int, ErrorKind]] = {
    THROTTLING: (429, ErrorKind.RATE_LIMITED),
    "ModelNotReadyException": (429, ErrorKind.OVERLOADED),
    UNAVAILABLE: (503, ErrorKind.OVERLOADED),
    INTERNAL: (500, ErrorKind.TRANSIENT),
    MODEL_TIMEOUT: (408, ErrorKind.TRANSIENT),
    "ModelErrorException": (424, ErrorKind.TRANSIENT),
    MODEL_STREAM_ERROR: (424, ErrorKind.TRANSIENT),
    QUOTA_EXCEEDED: (400, ErrorKind.QUOTA),
    ACCESS_DENIED: (403, ErrorKind.BAD_KEY),
    "UnrecognizedClientException": (403, ErrorKind.BAD_KEY),
    "InvalidSignatureException": (403, ErrorKind.BAD_KEY),
    "IncompleteSignatureException": (403, ErrorKind.BAD_KEY),
    "ExpiredTokenException": (403, ErrorKind.BAD_KEY),
    "MissingAuthenticationTokenException": (403, ErrorKind.BAD_KEY),
    VALIDATION: (400, ErrorKind.REQUEST),
    NOT_FOUND: (404, ErrorKind.REQUEST),
}
_BY_LOWER = {name.lower(): name for name in EXCEPTIONS}

# The exception an error Rotator writes names, by its status: the type botocore and the AWS SDKs read it as.
_FOR_STATUS = {400: VALIDATION, 401: ACCESS_DENIED, 403: ACCESS_DENIED, 404: NOT_FOUND, 408: MODEL_TIMEOUT,
               424: MODEL_STREAM_ERROR, 429: THROTTLING, 500: INTERNAL, 503: UNAVAILABLE, 529: UNAVAILABLE,
               504: MODEL_TIMEOUT}
# The exceptions a stream may carry: ConverseStream's and InvokeModelWithResponseStream's union members.
STREAM_EXCEPTIONS = frozenset({INTERNAL, MODEL_STREAM_ERROR, VALIDATION, THROTTLING, UNAVAILABLE, MODEL_TIMEOUT})


def exception_name(raw: str) -> str | None:
    """The exception type a header, body or frame names, as botocore spells it (`ThrottlingException`), whatever
    its case and decoration (`...#ThrottlingException`, `ThrottlingException:http://...`); None for one not known."""
    name = raw.split(":", 1)[0].rsplit("#", 1)[-1].strip()
    return _BY_LOWER.get(name.lower())


def exception_status(raw: str, default: int = 500) -> int:
    """The HTTP status of the exception named `raw` (`throttlingException` -> 429)."""
    name = exception_name(raw)
    return EXCEPTIONS[name][0] if name is not None else default


def exception_for(status: int, in_stream: bool = False) -> str:
    """The exception type an error of `status` that Rotator writes is named by: another 4xx is a validation error,
    another 5xx an internal one. `in_stream`: one a stream may carry, in lower camel case as frames name it."""
    name = _FOR_STATUS.get(status) or (VALIDATION if status < 500 else INTERNAL)
    if in_stream:
        if name not in STREAM_EXCEPTIONS:
            name = VALIDATION if status < 500 else INTERNAL
        return name[0].lower() + name[1:]
    return name


def error_body(status: int, message: str) -> bytes:
    """A Bedrock JSON error body: `message`, and the exception's type in `__type` (which botocore and the AWS SDKs
    read when no `x-amzn-errortype` header says it)."""
    return json.dumps({"__type": exception_for(status), "message": message}, ensure_ascii=False).encode()


def body_fields(body: bytes) -> dict:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def named_exception(answer: ErrorAnswer, error: VendorError) -> VendorError:
    """The dialect: the kind the exception type says (the header's, else the body's), and the body's message."""
    doc = body_fields(answer.body)
    named = answer.headers.get(ERROR_TYPE_HEADER) or next(
        (doc[k] for k in TYPE_KEYS if isinstance(doc.get(k), str)), "")
    message = next((doc[k] for k in MESSAGE_KEYS if isinstance(doc.get(k), str)), None)
    if message is not None and not error.message:
        error = dataclasses.replace(error, message=message)
    name = exception_name(named) if named else None
    if name is None:
        return error
    kind = EXCEPTIONS[name][1]
    quota = Quota(id=name, what="service quota exceeded") if kind is ErrorKind.QUOTA else None
    return dataclasses.replace(error, kind=kind, quota=quota)


BEDROCK_ERRORS = ErrorReader((named_exception,), essential=frozenset({"messages", "system", "toolConfig"}))
